"""What a run costs the machine while it runs: wall and CPU seconds, the peak of
memory in use, and the OpenStack processes the run started (Sampler)."""

import os
import re
import threading
import time

from shard_jobs.rules import phases, processes

SAMPLE_INTERVAL = 0.5


def machine_busy(proc="/proc") -> float:
    """CPU-seconds all the machine's CPUs spent busy since boot (the phase sampler's rule)."""
    return phases.machine_seconds(proc)[0]


def memory_used(proc="/proc") -> int:
    """Bytes in use on the machine: MemTotal - MemAvailable."""
    info = {}
    with open(f"{proc}/meminfo") as f:
        for line in f:
            key, _, rest = line.partition(":")
            info[key] = int(rest.split()[0]) * 1024
    return info["MemTotal"] - info.get("MemAvailable", info.get("MemFree", 0))


PROGRAM = re.compile(r"^(nova|keystone|glance|neutron|placement)(-[a-z-]+)?$")
TITLE = re.compile(r"^([a-z][a-z-]*): .*?(?:\[([\w-]+)\])?$")


def openstack_program(argv: list[str]) -> str | None:
    """The OpenStack program a process runs, from its command line, or None.

    Knows the scripts (bin/nova-compute, bin/keystone-manage, run by their
    interpreter or not), gunicorn serving a service (--name) and the process
    titles services give themselves ("nova-conductor: master process [...]",
    "gunicorn: worker [neutron]")."""
    if not argv:
        return None
    # A process title overwrites the command line, padded with spaces.
    argv = [argv[0].strip(), *argv[1:]]
    title = TITLE.match(argv[0])
    if title and " " in argv[0]:
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


def _read(path, mode="r"):
    try:
        with open(path, mode) as f:
            return f.read()
    except OSError:
        return None


class Sampler:
    """Every SAMPLE_INTERVAL seconds: the machine's memory in use (its peak), and
    the OpenStack processes started since the sampler started that belong to the
    run under measurement: a descendant of `root` (this process) when first seen,
    a child of one of them (a worker), or one whose command line, working
    directory or environment mentions one of `scopes` (a daemon that its
    launcher left: a service's configuration path, a shard's label)."""

    def __init__(self, scopes=(), root=None, proc="/proc"):
        self.proc = proc
        self.root = os.getpid() if root is None else root
        self.scopes = [s.encode() for s in scopes if s]
        self.baseline = {(pid, start) for pid, start, _ppid in self._stats()}  # ran before
        self.seen = set(self.baseline)
        self.started = {}  # (pid, start) -> program
        self.mem_start = memory_used(proc)
        self.mem_peak = self.mem_start
        self.rss_peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _stats(self):
        for pid, fields in processes.process_table(self.proc).items():
            yield pid, int(fields[processes.STARTTIME]), int(fields[processes.PPID])

    def _descends(self, pid, parents):
        for _ in range(64):
            pid = parents.get(pid)
            if pid is None or pid <= 1:
                return False
            if pid == self.root:
                return True
        return False

    def _mine(self, pid, parents, starts):
        ppid = parents.get(pid)
        if (ppid, starts.get(ppid)) in self.started or self._descends(pid, parents):
            return True
        blobs = [
            _read(f"{self.proc}/{pid}/cmdline", "rb") or b"",
            os.fsencode(_safe_readlink(f"{self.proc}/{pid}/cwd")),
            _read(f"{self.proc}/{pid}/environ", "rb") or b"",
        ]
        return any(scope in blob for scope in self.scopes for blob in blobs)

    def sample(self):
        stats = list(self._stats())
        starts = {pid: start for pid, start, _ppid in stats}
        parents = {pid: ppid for pid, _start, ppid in stats}
        # Parents before children: a worker is counted with its master.
        for pid, start, _ppid in sorted(stats, key=lambda s: s[1]):
            key = (pid, start)
            if key in self.seen:
                continue
            self.seen.add(key)
            raw = _read(f"{self.proc}/{pid}/cmdline", "rb")
            if not raw:
                continue
            argv = [a.decode(errors="replace") for a in raw.split(b"\0") if a]
            program = openstack_program(argv)
            if program and self._mine(pid, parents, starts):
                self.started[key] = program
        self.mem_peak = max(self.mem_peak, memory_used(self.proc))
        rss = 0
        for pid, start in self.started:
            if starts.get(pid) == start:
                statm = _read(f"{self.proc}/{pid}/statm")
                if statm:
                    rss += int(statm.split()[1]) * os.sysconf("SC_PAGE_SIZE")
        self.rss_peak = max(self.rss_peak, rss)

    def adopt(self, pids):
        """Count these processes and their descendants as the run's, those that
        were not running at the start (a cloud's services, named by its pid
        files: a service that renamed itself before a sample saw it, and whose
        launcher had already left, has no other mark of whose it is)."""
        stats = list(self._stats())
        starts = {pid: start for pid, start, _ppid in stats}
        wanted, grew = set(pids), True
        while grew:
            grew = False
            for pid, _start, ppid in stats:
                if ppid in wanted and pid not in wanted:
                    wanted.add(pid)
                    grew = True
        for pid in wanted:
            key = (pid, starts.get(pid))
            if key[1] is None or key in self.baseline or key in self.started:
                continue
            self.seen.add(key)
            raw = _read(f"{self.proc}/{pid}/cmdline", "rb") or b""
            argv = [a.decode(errors="replace") for a in raw.split(b"\0") if a]
            program = openstack_program(argv)
            if program:
                self.started[key] = program

    def _loop(self):
        while not self._stop.wait(SAMPLE_INTERVAL):
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


def _safe_readlink(path) -> str:
    try:
        return os.readlink(path)
    except OSError:
        return ""


def measure(scopes, func) -> dict:
    """Run func(sampler) -> dict and add wall and CPU seconds, memory and processes."""
    cpu0, t0 = machine_busy(), time.monotonic()
    load0 = os.getloadavg()[0]
    with Sampler(scopes) as sampler:
        result = func(sampler)
    result.update(
        wall_s=round(time.monotonic() - t0, 1),
        cpu_s=round(machine_busy() - cpu0, 1),
        load1_before=round(load0, 2),
        **sampler.result(),
    )
    return with_share(result)


def with_share(result: dict) -> dict:
    """The code under test's share of the machine's CPU in a measured run."""
    code, cpu = result.get("code_cpu_s"), result.get("cpu_s")
    result["code_share"] = round(code / cpu, 4) if code and cpu else None
    return result


def machine_info() -> dict:
    model = "unknown CPU"
    for line in (_read("/proc/cpuinfo") or "").splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    os_name = "Linux"
    for line in (_read("/etc/os-release") or "").splitlines():
        if line.startswith("PRETTY_NAME="):
            os_name = line.split("=", 1)[1].strip('"')
    return {
        "cpus": os.cpu_count(),
        "cpu_model": model,
        "mem_gib": round(memory_total() / 2**30),
        "os": os_name,
    }


def memory_total() -> int:
    for line in (_read("/proc/meminfo") or "").splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) * 1024
    return 0


# ---------------------------------------------------------------- the bench
