"""What a run costs the machine while it runs: wall and CPU seconds, the peak of
memory in use, and the OpenStack processes the run started (Sampler), all
through psutil; the CPU of the processes a run started and waited for, and of
a cloud's processes; and, for --split, the CPU of each process of a run's
tree (TreeSampler)."""

import os
import re
import resource
import threading
import time

import psutil

from shard_jobs.rules import phases

SAMPLE_INTERVAL = 0.5
# TreeSampler's: short enough to see most module processes (a tenth of a second
# and more), long enough that the walk costs little (about a millisecond).
SPLIT_INTERVAL = 0.025


def machine_busy() -> float:
    """CPU-seconds all the machine's CPUs spent busy since boot, by the node's
    report's rule (shard_phases.machine_seconds, standard library: the report
    runs with a node's python3), so that the bench and the report count alike."""
    return phases.machine_seconds()[0]


def memory_used() -> int:
    """Bytes in use on the machine: its memory less what is available (MemAvailable)."""
    memory = psutil.virtual_memory()
    return memory.total - memory.available


PROGRAM = re.compile(r"^(nova|keystone|glance|neutron|placement)(-[a-z-]+)?$")
TITLE = re.compile(r"^([a-z][a-z-]*): .*?(?:\[([\w-]+)\])?$")


def openstack_program(argv: list[str]) -> str | None:
    """The OpenStack program a process runs, from its command line, or None.

    Knows the scripts (bin/nova-compute, bin/keystone-manage, run by their
    interpreter or not), gunicorn serving a service (--name) and the process
    titles services give themselves ("nova-conductor: master process [...]",
    "gunicorn: worker [neutron]")."""
    argv = [arg for arg in argv if arg]
    if not argv:
        return None
    # A process title overwrites the command line, padded with NULs or spaces;
    # psutil hands a title padded with spaces back split at them: joined, it is whole.
    argv = [argv[0].strip(), *argv[1:]]
    title = TITLE.match(" ".join(argv).strip())
    if title:
        name, bracket = title.group(1), title.group(2)
        if name in ("gunicorn", "uwsgi") and bracket and PROGRAM.match(bracket):
            return bracket
        if PROGRAM.match(name):
            return name
    names = [os.path.basename(a) for a in argv[:2]]
    for name in names:
        if PROGRAM.match(name):
            return name
    if "gunicorn" in names and "--name" in argv[:-1]:
        name = argv[argv.index("--name") + 1]
        return name if PROGRAM.match(name) else None
    return None


def _ask(process: psutil.Process, what: str, default):
    """process.<what>(), or default when the process is gone or not ours to read."""
    try:
        return getattr(process, what)()
    except psutil.Error:
        return default


class Sampler:
    """Every SAMPLE_INTERVAL seconds: the machine's memory in use (its peak), and
    the OpenStack processes started since the sampler started that belong to the
    run under measurement: a descendant of `root` (this process) when first seen,
    a child of one of them (a worker), or one whose command line, working
    directory or environment mentions one of `scopes` (a daemon that its
    launcher left: a service's configuration path, a shard's label).

    A process is known by its pid and its creation time, so that a recycled pid
    is another process."""

    interval = SAMPLE_INTERVAL

    def __init__(self, scopes=(), root=None):
        self.root = os.getpid() if root is None else root
        self.scopes = [s for s in scopes if s]
        self.baseline = {(pid, start) for pid, (start, _ppid, _p) in _processes().items()}
        self.seen = set(self.baseline)
        self.started = {}  # (pid, start) -> program
        self.mem_start = memory_used()
        self.mem_peak = self.mem_start
        self.rss_peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _descends(self, pid, parents):
        for _ in range(64):
            pid = parents.get(pid)
            if pid is None or pid <= 1:
                return False
            if pid == self.root:
                return True
        return False

    def _mine(self, pid, process, argv, parents, starts):
        ppid = parents.get(pid)
        if (ppid, starts.get(ppid)) in self.started or self._descends(pid, parents):
            return True
        environ = _ask(process, "environ", {})
        texts = [
            "\0".join(argv),
            _ask(process, "cwd", ""),
            "\0".join(f"{key}={value}" for key, value in environ.items()),
        ]
        return any(scope in text for scope in self.scopes for text in texts)

    def sample(self):
        table = _processes()
        starts = {pid: start for pid, (start, _ppid, _p) in table.items()}
        parents = {pid: ppid for pid, (_start, ppid, _p) in table.items()}
        # Parents before children: a worker is counted with its master.
        for pid, (start, _ppid, process) in sorted(table.items(), key=lambda item: item[1][0]):
            key = (pid, start)
            if key in self.seen:
                continue
            self.seen.add(key)
            argv = _ask(process, "cmdline", [])
            program = openstack_program(argv)
            if program and self._mine(pid, process, argv, parents, starts):
                self.started[key] = program
        self.mem_peak = max(self.mem_peak, memory_used())
        rss = 0
        for pid, start in self.started:
            if starts.get(pid) == start:
                memory = _ask(table[pid][2], "memory_info", None)
                rss += memory.rss if memory else 0
        self.rss_peak = max(self.rss_peak, rss)

    def adopt(self, pids):
        """Count these processes and their descendants as the run's, those that
        were not running at the start (a cloud's services, named by its pid
        files: a service that renamed itself before a sample saw it, and whose
        launcher had already left, has no other mark of whose it is)."""
        table = _processes()
        wanted, grew = set(pids), True
        while grew:
            grew = False
            for pid, (_start, ppid, _p) in table.items():
                if ppid in wanted and pid not in wanted:
                    wanted.add(pid)
                    grew = True
        for pid in wanted:
            if pid not in table:
                continue
            start, _ppid, process = table[pid]
            key = (pid, start)
            if key in self.baseline or key in self.started:
                continue
            self.seen.add(key)
            program = openstack_program(_ask(process, "cmdline", []))
            if program:
                self.started[key] = program

    def _loop(self):
        while not self._stop.wait(self.interval):
            self.sample()

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.sample()

    def result(self) -> dict:
        programs = {}
        for program in self.started.values():
            programs[program] = programs.get(program, 0) + 1
        return {
            "peak_mem_mib": round((self.mem_peak - self.mem_start) / 2**20),
            "openstack_processes": len(self.started),
            "openstack_programs": dict(sorted(programs.items())),
            "openstack_rss_peak_mib": round(self.rss_peak / 2**20),
        }


class TreeSampler(Sampler):
    """A Sampler that also walks the run's process tree every SPLIT_INTERVAL
    seconds (--split): each process below root (this process, not counted),
    and each one seen there before that still runs (a service its launcher
    left), with its command line and its own user+system CPU as last seen. A
    process is known by its pid and its creation time; its parent is the one
    it had when first seen. The Sampler's own figures are sampled every
    SAMPLE_INTERVAL as before.

    What it cannot see: a process that starts and ends between two walks, and
    what a process used after the last walk that saw it."""

    interval = SPLIT_INTERVAL

    def __init__(self, scopes=(), root=None):
        super().__init__(scopes, root)
        self.processes = {}  # (pid, start) -> record
        self.walks = 0
        # The sampler's own CPU (of the thread that samples): the machine's, not the run's.
        self.cpu_s = 0.0
        self._gone = set()
        self._full_at = 0.0

    def sample(self):
        cpu0 = time.thread_time()
        self.walk()
        now = time.monotonic()
        if now - self._full_at >= SAMPLE_INTERVAL:
            self._full_at = now
            super().sample()
        self.cpu_s += time.thread_time() - cpu0

    def _tree(self) -> dict:
        """(pid, start) -> psutil.Process of the processes to look at now:
        those below root, and those seen before that still run elsewhere
        (reparented when their launcher left: a service started in a session
        of its own), with theirs. One table of parents a walk."""
        parents = _parents()
        children = {}
        for pid, ppid in parents.items():
            children.setdefault(ppid, []).append(pid)
        found = {}

        def below(pids):
            todo = list(pids)
            while todo:
                pid = todo.pop()
                if pid in seen:
                    continue
                seen.add(pid)
                try:
                    process = psutil.Process(pid)
                    found[(pid, process.create_time())] = process
                except psutil.Error:
                    continue
                todo.extend(children.get(pid, []))

        seen = {self.root}
        below(children.get(self.root, []))
        for key in list(self.processes):
            pid, start = key
            if key in self._gone or key in found:
                continue
            try:
                process = psutil.Process(pid)
                if pid not in parents or process.create_time() != start:
                    raise psutil.NoSuchProcess(pid)
            except psutil.Error:
                self._gone.add(key)
                continue
            below([pid])
        return found

    def walk(self):
        now = time.time()
        found = self._tree()
        by_pid = {pid: (pid, start) for pid, start in found}
        for key, process in found.items():
            try:
                with process.oneshot():
                    times = process.cpu_times()
                    argv = process.cmdline()
                    ppid = process.ppid()
            except psutil.Error:
                continue
            record = self.processes.get(key)
            if record is None:
                record = self.processes[key] = {
                    "pid": key[0],
                    "start": key[1],
                    "ppid": ppid,
                    # The parent it had when first seen, when that is in the tree.
                    "parent": list(by_pid[ppid]) if ppid in by_pid else None,
                    "argv": argv,
                    "cpu_s": 0.0,
                    "first": now,
                }
            # The latest command line: a fork shows its parent's until it execs.
            if argv:
                record["argv"] = argv
            record["cpu_s"] = round(times.user + times.system, 3)
            record["last"] = now
        self.walks += 1

    def result(self) -> dict:
        out = super().result()
        out["tree"] = {
            "interval_s": self.interval,
            "walks": self.walks,
            "sampler_cpu_s": round(self.cpu_s, 2),
            "processes": list(self.processes.values()),
        }
        return out


def children_cpu() -> float:
    """CPU-seconds of the processes this one started and waited for, with
    those they waited for in turn (getrusage RUSAGE_CHILDREN): a daemon that
    left its launcher is not in it."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def tree_cpu(before: dict, after: dict, roots) -> float:
    """CPU-seconds that these processes and their descendants (in `after`,
    phases.read_procs' tables) used since `before`, their exited children's
    included: a process already there in `before` (same pid, same start)
    from then on, a newer one all of it."""
    ticks = 0
    for pid in phases.descendants(after, roots):
        _ppid, start, own, children = after[pid]
        was = before.get(pid)
        base = was[2] + was[3] if was and was[1] == start else 0
        ticks += max(0, own + children - base)
    return round(ticks / phases.CLK_TCK, 2)


def bench_groups(result: dict, own_s: float, cloud_s: float | None) -> dict:
    """The machine's CPU of a run the bench splits itself (no report.json), in
    the report's groups: the code under test (result's code_cpu_s), the
    target cloud (cloud_s), the harness (the run's own processes, own_s, less
    the code under test when they waited for it) and the rest of the machine."""
    code = result.get("code_cpu_s") or 0.0
    harness = max(0.0, own_s - code)
    measured = code + harness + (cloud_s or 0.0)
    cpu = result.get("cpu_s")
    return {
        "cloud_cpu_s": cloud_s,
        "harness_cpu_s": round(harness, 2),
        "other_cpu_s": round(max(0.0, cpu - measured), 2) if cpu is not None else None,
    }


def _parents() -> dict:
    """pid -> parent pid of every process: psutil's own table where its platform
    has one (Linux: one read of each /proc/<pid>/stat, what Process.children
    reads on each call), else through process_iter."""
    table = getattr(psutil._psplatform, "ppid_map", None)
    if table is not None:
        return table()
    return {p.pid: p.info["ppid"] for p in psutil.process_iter(["ppid"])}


def _processes() -> dict:
    """pid -> (creation time, parent pid, psutil.Process) of every process that could be read."""
    table = {}
    for process in psutil.process_iter(["create_time", "ppid"]):
        start, ppid = process.info["create_time"], process.info["ppid"]
        if start is not None and ppid is not None:
            table[process.pid] = (start, ppid, process)
    return table


def measure(scopes, func, sampler=Sampler, cloud=None) -> dict:
    """Run func(sampler) -> dict and add wall and CPU seconds, memory and processes.

    With cloud (a function: the target cloud's pids at the end), the bench
    splits the machine's CPU itself (bench_groups): the processes func
    started and waited for are the harness, the cloud's processes the cloud."""
    own0, procs0 = children_cpu(), phases.read_procs() if cloud else None
    cpu0, t0 = machine_busy(), time.monotonic()
    load0 = os.getloadavg()[0]
    with sampler(scopes) as sampling:
        result = func(sampling)
    result.update(
        wall_s=round(time.monotonic() - t0, 1),
        cpu_s=round(machine_busy() - cpu0, 1),
        load1_before=round(load0, 2),
    )
    if cloud is not None:
        try:
            pids = cloud()
            cloud_s = None if pids is None else tree_cpu(procs0, phases.read_procs(), pids)
        except (OSError, ValueError, KeyError):
            cloud_s = None
        result.update(bench_groups(result, children_cpu() - own0, cloud_s))
    result.update(sampling.result())
    return with_share(result)


def with_share(result: dict) -> dict:
    """The code under test's share of the machine's CPU in a measured run."""
    code, cpu = result.get("code_cpu_s"), result.get("cpu_s")
    result["code_share"] = round(code / cpu, 4) if code and cpu else None
    return result


def _text(path) -> str:
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return ""


def machine_info() -> dict:
    model = "unknown CPU"
    # psutil has no CPU model name: /proc/cpuinfo's is the one to show.
    for line in _text("/proc/cpuinfo").splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    os_name = "Linux"
    for line in _text("/etc/os-release").splitlines():
        if line.startswith("PRETTY_NAME="):
            os_name = line.split("=", 1)[1].strip('"')
    return {
        "cpus": os.cpu_count(),
        "cpu_model": model,
        "mem_gib": round(psutil.virtual_memory().total / 2**30),
        "os": os_name,
    }
