"""./shard bench: what testing a nova change costs, three ways, on this machine.

    from-scratch  destroy a cloud of its own (not the default one), bring it up
                  from nothing, start a compute from the code under test, exercise
    shard         ./shard run shard-nova-compute against the running default cloud
    floor         the same cycle in a plain openstacksdk script (bench_floor.py)

Each variant runs --repeat times (interleaved, so that the machine's other work
spreads over all of them); the table shows medians. For each run: wall seconds,
CPU seconds of every process on the machine (/proc/stat busy time), the peak of
the machine's memory in use above its level at the start, the OpenStack
processes the run started, the CPU seconds of the code under test (the
nova-compute that runs the change) and its share of the machine's CPU. Then the
scaling of shard jobs run at once, and the harness overhead: where a shard run's
time goes beyond the floor, per role. Everything goes to a JSON file too.
"""

import json
import os
import re
import statistics
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

from shard_jobs import paths
from shard_jobs.rules import labels

VARIANTS = ("from-scratch", "shard", "floor")
JOB = "shard-nova-compute"
# The from-scratch variant's own cloud: other ports, databases, vhost and users
# than the default cloud (and the test suite's clouds), destroyed at the end.
# Its ports lie below the kernel's ephemeral range (32768-60999 by default):
# there, any client connection of the machine may hold one for a while, and the
# cloud would not come up.
BENCH_CLOUD = {
    "SHARD_CLOUD_DIR": "/tmp/shard-jobs-bench-cloud",
    "SHARD_CLOUD_VAR_PORTS": json.dumps(
        {
            "keystone": 31000,
            "placement": 31778,
            "glance": 31292,
            "neutron": 31696,
            "nova_api": 31774,
        }
    ),
    "SHARD_CLOUD_VAR_DB_PREFIX": "shardbench_",
    "SHARD_CLOUD_VAR_DB_USER": "shard_bench",
    "SHARD_CLOUD_VAR_RABBIT_VHOST": "shard-bench",
    "SHARD_CLOUD_VAR_RABBIT_USER": "shard_bench",
    "SHARD_CLOUD_VAR_NAME": "shard-bench",
}
# The shard and floor variants use the default cloud, whatever SHARD_CLOUD_* says.
DEFAULT_CLOUD_DIR = paths.HOME / "cloud"
SAMPLE_INTERVAL = 0.5
CLK_TCK = os.sysconf("SC_CLK_TCK")
SHARD = str(paths.REPO / "shard")


class BenchError(Exception):
    pass


# ---------------------------------------------------------------- measuring


def machine_busy(proc="/proc") -> float:
    """CPU-seconds all the machine's CPUs spent busy since boot (/proc/stat)."""
    with open(f"{proc}/stat") as f:
        values = [int(v) for v in f.readline().split()[1:]]
    values += [0] * (8 - len(values))
    user, nice, system, _idle, _iowait, irq, softirq, steal = values[:8]
    return (user + nice + system + irq + softirq + steal) / CLK_TCK


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
        for entry in os.listdir(self.proc):
            if entry.isdigit():
                stat = _read(f"{self.proc}/{entry}/stat")
                if stat:
                    fields = stat[stat.rindex(")") + 2 :].split()
                    yield int(entry), int(fields[19]), int(fields[1])

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
    code = result.get("code_cpu_s")
    result["code_share"] = round(code / result["cpu_s"], 4) if code and result["cpu_s"] else None
    return result


# ---------------------------------------------------------------- the variants


def _env(extra=None) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHARD_CLOUD_")}
    env.update(extra or {})
    return env


def _summary_json(stdout: str) -> dict | None:
    start = stdout.find("{\n")
    if start < 0:
        return None
    try:
        return json.loads(stdout[start:])
    except ValueError:
        return None


PROGRESS = re.compile(
    r"^(?P<phase>pre-run|run|post-run)\s+(?P<role>\S+)\s+(?:ok|changed \(\d+\)|failed.*?)\s+"
    r"(?P<seconds>\d+(?:\.\d+)?)s$"
)


def role_seconds(stdout: str) -> dict:
    """Seconds per role from ./shard run's progress lines; a playbook's own tasks
    (fact gathering) count under its phase's name (pre-run, run, post-run)."""
    out = {}
    for line in stdout.splitlines():
        m = PROGRESS.match(line.rstrip())
        if m:
            out[m["role"]] = round(out.get(m["role"], 0.0) + float(m["seconds"]), 2)
    return out


def new_build() -> str:
    """A build id, as Zuul's; the run's label (shard-<12 hex>) is derived from it."""
    return uuid.uuid4().hex


def start_shard_job(workdir: Path, build: str):
    """./shard run shard-nova-compute as a process, with a build id known in advance."""
    log = open(workdir / f"{labels.label_for(build)}.out", "w+")  # noqa: SIM115 (closed in finish)
    proc = subprocess.Popen(
        [SHARD, "run", JOB, "--json", "--build", build],
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        env=_env(),
    )
    return {"proc": proc, "build": build, "log": log, "start": time.monotonic()}


def label_of(build: str) -> str:
    return labels.label_for(build)


def wait_jobs(jobs: list[dict]):
    """Wait for every job, noting when each one ended (not when it was looked at)."""
    while True:
        for job in jobs:
            if "end" not in job and job["proc"].poll() is not None:
                job["end"] = time.monotonic()
        if all("end" in job for job in jobs):
            return
        time.sleep(0.2)


def finish_shard_job(job) -> dict:
    wait_jobs([job])
    rc = job["proc"].returncode
    wall = job["end"] - job["start"]
    job["log"].seek(0)
    stdout = job["log"].read()
    job["log"].close()
    summary = _summary_json(stdout) or {}
    report = summary.get("report") or {}
    return {
        "ok": rc == 0 and summary.get("result") == "SUCCESS",
        "result": summary.get("result", f"exit {rc}"),
        "build": job["build"],
        "job_wall_s": round(wall, 1),
        "code_cpu_s": (report.get("cpu_seconds") or {}).get("code_under_test"),
        "report": report.get("html"),
        "phases": {k: v.get("seconds") for k, v in (summary.get("phases") or {}).items()},
        "roles": role_seconds(stdout),
        "output": job["log"].name,
    }


def run_shard(workdir: Path, build: str) -> dict:
    return finish_shard_job(start_shard_job(workdir, build))


def run_floor(secret_file: str, venv: str, workdir: Path) -> dict:
    proc = subprocess.run(
        [
            paths.bin_path("python"),
            "-m",
            "shard_jobs.bench_floor",
            "--secret-file",
            secret_file,
            "--venv",
            venv,
            "--workdir",
            str(workdir),
        ],
        capture_output=True,
        text=True,
        env=_env(),
    )
    try:
        out = json.loads(proc.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        out = {"ok": False, "error": (proc.stderr.strip().splitlines() or ["no output"])[-1]}
    return {
        "ok": proc.returncode == 0 and out.get("ok", False),
        "label": out.get("label"),
        "error": out.get("error"),
        "code_cpu_s": out.get("code_cpu"),
        "steps": out.get("steps", {}),
        "floor_s": out.get("seconds"),
        "boot_retries": out.get("boot_retries"),
    }


def service_pids(manifest: dict) -> list[int]:
    """The pids of a cloud's services, from their pid records (run/<name>.pid.json)."""
    pids = []
    for svc in manifest.get("services", []):
        record = _read(svc["pidfile"] + ".json")
        try:
            pids.append(int(json.loads(record)["pid"]))
        except (TypeError, ValueError, KeyError):
            continue
    return pids


def cloud_manifest(cloud_dir: str) -> dict:
    return json.loads((Path(cloud_dir) / "cloud.json").read_text())


def run_cloud(action: str, env: dict) -> float:
    start = time.monotonic()
    proc = subprocess.run(
        [SHARD, "cloud", action], env=_env(env), capture_output=True, text=True, timeout=1800
    )
    if proc.returncode != 0:
        tail = (proc.stdout + proc.stderr).strip().splitlines()[-3:]
        raise BenchError(f"cloud {action} of the bench cloud failed: {' / '.join(tail)}")
    return round(time.monotonic() - start, 1)


# ---------------------------------------------------------------- statistics and tables


def median(values):
    values = [v for v in values if v is not None]
    return round(statistics.median(values), 4) if values else None


def summarize(runs: list[dict]) -> dict:
    """Medians (and min, max) of the numeric columns of a variant's runs that
    passed (a failed run stops early: its numbers are not the variant's); of
    all of them when none passed."""
    passed = [r for r in runs if r.get("ok")]
    out = {"runs": len(runs), "ok": len(passed)}
    counted = passed or runs
    for key in ("wall_s", "cpu_s", "peak_mem_mib", "openstack_processes", "code_cpu_s"):
        values = [r.get(key) for r in counted if r.get(key) is not None]
        out[key] = median(values)
        out[key + "_range"] = [min(values), max(values)] if values else None
    out["code_share"] = median([r.get("code_share") for r in counted])
    return out


def ratios(summary: dict) -> dict:
    def ratio(a, b, key):
        x, y = summary.get(a, {}).get(key), summary.get(b, {}).get(key)
        return round(x / y, 2) if x and y else None

    return {
        f"{a}/{b}": {key: ratio(a, b, key) for key in ("wall_s", "cpu_s")}
        for a, b in (("shard", "from-scratch"), ("shard", "floor"))
    }


def overhead(shard_runs: list[dict], floor_runs: list[dict]) -> list[dict]:
    """Per role of the shard run, its median seconds next to the floor's for the
    same work (deploy, label, exercise, teardown); the rest has no counterpart
    in the floor: starting playbooks and gathering facts, pre-flight, guard, the
    build, collecting logs, and ./shard run's own preparation."""
    floor_step = {
        "shard_deploy": "deploy",
        "shard_label": "label",
        "shard_exercise": "exercise",
        "shard_teardown": "teardown",
    }
    ok = [r for r in shard_runs if r.get("ok")] or shard_runs
    floor_runs = [r for r in floor_runs if r.get("ok")] or floor_runs
    names = []
    for run in ok:
        for name in run.get("roles", {}):
            if name not in names:
                names.append(name)
    rows = []
    for name in names:
        shard_s = median([r["roles"].get(name) for r in ok if r.get("roles")])
        step = floor_step.get(name)
        floor_s = median([r["steps"].get(step) for r in floor_runs if step]) if step else 0.0
        rows.append({"step": name, "shard_s": shard_s, "floor_s": floor_s or 0.0})
    roles_total = sum(r["shard_s"] or 0 for r in rows)
    wall = median([r.get("job_wall_s") for r in ok])
    if wall is not None:
        rows.append(
            {
                "step": "outside the roles",
                "shard_s": round(wall - roles_total, 2),
                "floor_s": median(
                    [r["floor_s"] - sum(r["steps"].values()) for r in floor_runs if r["floor_s"]]
                )
                or 0.0,
            }
        )
    for row in rows:
        row["beyond_floor_s"] = (
            round(row["shard_s"] - row["floor_s"], 2) if row["shard_s"] is not None else None
        )
    return rows


def _fmt(value, spec=".1f", none="-"):
    return none if value is None else format(value, spec)


def format_table(headers: list[str], rows: list[list]) -> str:
    """A plain text table: the first column left-aligned, the others right-aligned."""
    cells = [headers] + [[str(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    lines = []
    for n, row in enumerate(cells):
        parts = [row[0].ljust(widths[0])] + [
            c.rjust(w) for c, w in zip(row[1:], widths[1:], strict=True)
        ]
        lines.append("  ".join(parts).rstrip())
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def render(result: dict) -> str:
    out = []
    machine = result["machine"]
    out.append(
        f"shard bench {result['started']}: {machine['cpus']} CPUs ({machine['cpu_model']}), "
        f"{machine['mem_gib']} GiB, {machine['os']}; repeat {result['repeat']}, medians"
    )
    summary = result["summary"]
    rows = []
    for variant in result["variants"]:
        s = summary.get(variant)
        if not s:
            continue
        rows.append(
            [
                variant,
                _fmt(s["wall_s"]),
                _fmt(s["cpu_s"]),
                _fmt(s["peak_mem_mib"], ".0f"),
                _fmt(s["openstack_processes"], ".0f"),
                _fmt(s["code_cpu_s"]),
                _fmt(s["code_share"] * 100 if s["code_share"] is not None else None, ".1f") + "%",
                f"{s['ok']}/{s['runs']}",
            ]
        )
    out.append(
        format_table(
            [
                "variant",
                "wall s",
                "CPU s",
                "peak mem MiB",
                "OpenStack procs",
                "code CPU s",
                "code share",
                "ok",
            ],
            rows,
        )
    )
    ratio_rows = [
        [name, _fmt(r["wall_s"], ".2f"), _fmt(r["cpu_s"], ".2f")]
        for name, r in result["ratios"].items()
        if r["wall_s"] is not None or r["cpu_s"] is not None
    ]
    if ratio_rows:
        out += ["", format_table(["ratio", "wall", "CPU"], ratio_rows)]
    if result.get("scaling"):
        rows = [
            [
                str(s["jobs"]),
                _fmt(s["wall_s"]),
                _fmt(s["job_wall_s"]),
                _fmt(s["cpu_s"]),
                _fmt(s["cpu_s"] / s["jobs"] if s["cpu_s"] is not None else None),
                str(s["failures"]),
            ]
            for s in result["scaling"]
        ]
        out += [
            "",
            "scaling: shard jobs started at once",
            format_table(
                ["jobs", "wall s", "wall s per job", "CPU s", "CPU s per job", "failures"], rows
            ),
        ]
    if result.get("overhead"):
        rows = [
            [r["step"], _fmt(r["shard_s"]), _fmt(r["floor_s"]), _fmt(r["beyond_floor_s"])]
            for r in result["overhead"]
        ]
        total = [r["beyond_floor_s"] for r in result["overhead"] if r["beyond_floor_s"]]
        rows.append(["total", "", "", _fmt(sum(total))])
        out += [
            "",
            "harness overhead: a shard run's roles against the floor (medians)",
            format_table(["role", "shard s", "floor s", "beyond floor s"], rows),
        ]
    if result.get("slowest_tasks"):
        out += ["", "slowest tasks of the last shard run:"]
        out += [f"  {t['seconds']:6.1f}s  {t['task']}" for t in result["slowest_tasks"]]
    if result.get("notes"):
        out += [""] + [f"note: {n}" for n in result["notes"]]
    return "\n".join(out)


TASK_LINE = re.compile(
    r"^(?:ok|changed|failed|fatal)[^:]*: \[[^\]]+\] (?P<task>.*) \((?P<s>[\d.]+)s\)$"
)


def slowest_tasks(job_output: Path, count=8) -> list[dict]:
    """The slowest tasks of a run's job-output.txt."""
    try:
        lines = job_output.read_text().splitlines()
    except OSError:
        return []
    tasks = []
    for line in lines:
        m = TASK_LINE.match(line)
        if m:
            tasks.append({"task": m["task"], "seconds": float(m["s"])})
    return sorted(tasks, key=lambda t: -t["seconds"])[:count]


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


class Bench:
    def __init__(self, args):
        self.repeat = args.repeat
        self.variants = [v for v in VARIANTS if v in args.only]
        self.scaling = args.scaling
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        self.dir = paths.HOME / "bench" / stamp
        self.dir.mkdir(parents=True, exist_ok=True)
        self.json_path = Path(args.out) if args.out else self.dir / "bench.json"
        # With --json, stdout is the result alone: progress goes to stderr.
        self.progress = sys.stderr if args.json else sys.stdout
        self.runs = {v: [] for v in self.variants}
        self.result = {
            "started": stamp,
            "machine": machine_info(),
            "repeat": self.repeat,
            "variants": self.variants,
            "dir": str(self.dir),
        }
        self.default_manifest = None
        self.bench_cloud_up = False

    def log(self, msg):
        print(f"bench: {msg}", file=self.progress, flush=True)

    # -- variants
    def shard(self, n) -> dict:
        build = new_build()
        return measure([label_of(build)], lambda _sampler: run_shard(self.dir, build))

    def floor(self, n) -> dict:
        manifest = self.default_manifest
        workdir = self.dir / f"floor-{n}"
        return measure(
            [str(workdir)],
            lambda _sampler: run_floor(manifest["secret_file"], manifest["venv"], workdir),
        )

    def from_scratch(self, n) -> dict:
        # Untimed: a cloud that was never there (its own, never the default one).
        self.bench_cloud_up = True
        try:
            destroy_s = run_cloud("destroy", BENCH_CLOUD)
        except BenchError as exc:
            return {"ok": False, "error": str(exc), "wall_s": 0.0, "cpu_s": 0.0}
        workdir = self.dir / f"from-scratch-{n}"

        def work(sampler):
            try:
                up_s = run_cloud("up", BENCH_CLOUD)
            except BenchError as exc:
                return {"ok": False, "error": str(exc)}
            manifest = cloud_manifest(BENCH_CLOUD["SHARD_CLOUD_DIR"])
            sampler.adopt(service_pids(manifest))
            floor = run_floor(manifest["secret_file"], manifest["venv"], workdir)
            floor["steps"] = dict(floor["steps"], cloud_up=up_s)
            return floor

        out = measure([BENCH_CLOUD["SHARD_CLOUD_DIR"], str(workdir)], work)
        out["destroy_before_s"] = destroy_s
        return out

    def scale(self, jobs: int) -> dict:
        builds = [new_build() for _ in range(jobs)]

        def work(_sampler):
            started = [start_shard_job(self.dir, build) for build in builds]
            wait_jobs(started)
            return {"jobs_runs": [finish_shard_job(job) for job in started]}

        out = measure([label_of(build) for build in builds], work)
        runs = out.pop("jobs_runs")
        return {
            "jobs": jobs,
            "wall_s": out["wall_s"],
            "job_wall_s": median([r["job_wall_s"] for r in runs]),
            "cpu_s": out["cpu_s"],
            "failures": sum(1 for r in runs if not r["ok"]),
            "peak_mem_mib": out["peak_mem_mib"],
            "openstack_processes": out["openstack_processes"],
            "runs": runs,
        }

    # -- the whole
    def run(self) -> dict:
        if any(v in self.variants for v in ("shard", "floor")) or self.scaling:
            self.log("the default cloud: ./shard cloud up")
            if subprocess.run([SHARD, "cloud", "up"], env=_env()).returncode != 0:
                raise BenchError("the default cloud did not come up")
            from shard_jobs import cloud

            self.default_manifest = cloud.load_manifest(DEFAULT_CLOUD_DIR)
        try:
            for n in range(1, self.repeat + 1):
                for variant in self.variants:
                    self.log(f"{variant} {n}/{self.repeat} ...")
                    run = getattr(self, variant.replace("-", "_"))(n)
                    self.runs[variant].append(run)
                    why = run.get("error") or run.get("result")
                    state = "ok" if run.get("ok") else f"FAILED ({why})"
                    self.log(
                        f"{variant} {n}/{self.repeat}: {state}, wall {run['wall_s']}s,"
                        f" CPU {run['cpu_s']}s"
                    )
                    self.save()
            scaling = []
            for jobs in self.scaling:
                if jobs == 1 and self.runs.get("shard"):
                    summary = summarize(self.runs["shard"])
                    scaling.append(
                        {
                            "jobs": 1,
                            "wall_s": summary["wall_s"],
                            "job_wall_s": summary["wall_s"],
                            "cpu_s": summary["cpu_s"],
                            "failures": summary["runs"] - summary["ok"],
                            "from": "the shard variant's runs (medians)",
                        }
                    )
                    continue
                self.log(f"scaling: {jobs} shard jobs at once ...")
                scaling.append(self.scale(jobs))
                s = scaling[-1]
                self.log(
                    f"scaling {jobs}: wall {s['wall_s']}s, {s['job_wall_s']}s per job,"
                    f" CPU {s['cpu_s']}s, {s['failures']} failed"
                )
                self.result["scaling"] = scaling
                self.save()
            self.result["scaling"] = scaling
        finally:
            if self.bench_cloud_up:
                self.log("destroying the bench cloud")
                try:
                    run_cloud("destroy", BENCH_CLOUD)
                except BenchError as exc:
                    self.log(str(exc))
        self.finish()
        return self.result

    def finish(self):
        self.result["summary"] = {v: summarize(r) for v, r in self.runs.items() if r}
        self.result["ratios"] = ratios(self.result["summary"])
        if self.runs.get("shard") and self.runs.get("floor"):
            self.result["overhead"] = overhead(self.runs["shard"], self.runs["floor"])
        shard_ok = [r for r in self.runs.get("shard", []) if r.get("ok")]
        if shard_ok:
            logs = paths.RUNS_DIR / shard_ok[-1]["build"] / "logs" / "job-output.txt"
            self.result["slowest_tasks"] = slowest_tasks(logs)
        self.result["notes"] = notes(self.result)
        self.save()

    def save(self):
        self.result["runs"] = self.runs
        self.json_path.parent.mkdir(parents=True, exist_ok=True)
        self.json_path.write_text(json.dumps(self.result, indent=2) + "\n")


def notes(result: dict) -> list[str]:
    ran = set(result.get("variants", []))
    out = [
        "CPU s and peak mem are machine-wide (/proc/stat, /proc/meminfo): whatever else runs "
        "on the machine at the same time is in them",
        "code CPU s is the nova-compute running the code under test (from its start until it "
        "is stopped); code share is that over CPU s",
    ]
    if "from-scratch" in ran:
        out.append(
            "from-scratch: a cloud of its own brought up from nothing (the services' virtualenv "
            "and package caches kept, as for every variant), then the floor's cycle on it; the "
            "destroy before it is not timed"
        )
    if "floor" in ran or "from-scratch" in ran:
        out.append(
            "floor: bench_floor.py, nova-compute from the cloud's virtualenv (the release the "
            "shard job tests by default, no build), the shard job's exercise (boot on the "
            "shard's trait, stop, start, reboot, delete)"
        )
    loads = [r.get("load1_before") for runs in result.get("runs", {}).values() for r in runs]
    loads = [v for v in loads if v is not None]
    if loads:
        out.append(
            f"1-minute load before each run: {min(loads):.1f} to {max(loads):.1f} "
            f"on {result['machine']['cpus']} CPUs"
        )
    return out


def parse_scaling(text: str) -> list[int]:
    if text.strip().lower() in ("", "none", "0"):
        return []
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise BenchError(f"bad --scaling {text!r}: a list of job counts, e.g. 1,2,4,8") from None
    if any(v < 1 or v > 16 for v in values):
        raise BenchError(f"bad --scaling {text!r}: job counts from 1 to 16")
    return values


def main(args) -> int:
    try:
        args.scaling = parse_scaling(args.scaling)
        args.only = [v.strip() for v in args.only.split(",") if v.strip()]
        unknown = [v for v in args.only if v not in VARIANTS]
        if unknown or args.repeat < 1:
            raise BenchError(
                f"bad --only {','.join(unknown)}: choose among {', '.join(VARIANTS)}"
                if unknown
                else "--repeat must be at least 1"
            )
        bench = Bench(args)
        result = bench.run()
    except BenchError as exc:
        sys.stderr.write(f"bench: {exc}\n")
        return 2
    except KeyboardInterrupt:
        sys.stderr.write("bench: interrupted\n")
        return 130
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print()
        print(render(result))
        print(f"\nbench: JSON in {bench.json_path}")
    failed = [r for runs in bench.runs.values() for r in runs if not r.get("ok")]
    failed += [s for s in result.get("scaling", []) if s.get("failures")]
    return 1 if failed else 0
