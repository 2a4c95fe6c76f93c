# Copyright shard-jobs contributors
# SPDX-License-Identifier: Apache-2.0
"""Service processes tracked by pid records: the one home of the record and its rules.

A service runs in a session of its own (its pid is its process group id), its
output appended to a log, and its pid file has a JSON sidecar (<pidfile>.json)
with the pid, the process's start time (so that a recycled pid is never taken
for it), the boot's id (pids and start times mean nothing after a reboot), a
fingerprint (what it was started with) and its command.

Used by the shard_process, shard_teardown_cloud, shard_embedded_cloud and
shard_image_info modules (as ansible.module_utils.shard_processes), and by the CLI
(shard_jobs.rules.processes). Standard library only, reading /proc:
it runs with whatever python3 a node has, before any virtualenv exists (the
embedded cloud's first bring-up), where psutil cannot be assumed.
"""

import contextlib
import json
import os
import re
import signal
import socket
import subprocess

from ansible.module_utils.shard_waits import WaitTimeout, wait_until

# Seconds between two looks at a process that is stopping.
STOP_POLL = 0.05


class StartFailed(Exception):
    """A process that could not be started or did not come up: one line saying why."""

    def __init__(self, msg, log_tail=""):
        super().__init__(msg)
        self.log_tail = log_tail


# ---------------------------------------------------------------- /proc


# /proc/<pid>/stat, the one reader of it (the processes' records here, the
# phase sampler, the bench, the tests): fields after the command name, state
# first, so that 0-based index i is the man page's field i + 3.
STATE, PPID, PGID, UTIME, STIME, CUTIME, CSTIME, STARTTIME = 0, 1, 2, 11, 12, 13, 14, 19


def stat_fields(pid, proc="/proc"):
    """Fields of <proc>/<pid>/stat after the command name (state first), or None."""
    try:
        with open(f"{proc}/{pid}/stat") as f:
            stat = f.read()
    except OSError:
        return None
    # The command name (field 2) may contain spaces: split after its closing paren.
    return stat[stat.rindex(")") + 2 :].split()


def process_table(proc="/proc"):
    """pid -> stat fields of every process that could be read."""
    table = {}
    for entry in os.listdir(proc):
        if entry.isdigit():
            fields = stat_fields(entry, proc)
            if fields:
                table[int(entry)] = fields
    return table


def start_time(pid):
    """Process start time in clock ticks since boot, or None if no such live process."""
    fields = stat_fields(pid)
    if fields is None or fields[STATE] == "Z":
        return None
    return int(fields[STARTTIME])


def started_at(record):
    """Wall-clock time (epoch seconds) at which a record's process started, or None.

    From its start time in clock ticks and the boot time (/proc/stat btime),
    exact to a second. btime follows the wall clock when it is stepped, as the
    cloud's timestamps that this is compared with do.
    """
    ticks = record.get("start_time") if record else None
    if ticks is None:
        return None
    try:
        with open("/proc/stat") as f:
            btime = next(int(line.split()[1]) for line in f if line.startswith("btime "))
    except (OSError, StopIteration, ValueError):
        return None
    return btime + ticks / os.sysconf("SC_CLK_TCK")


def boot_id():
    """This boot's id (the kernel's random boot_id), or None where it cannot be read."""
    try:
        with open("/proc/sys/kernel/random/boot_id") as f:
            return f.read().strip()
    except OSError:
        return None


def group_members(pgid, since=None):
    """Live pids of process group pgid (the leader included), started at or after since."""
    return [
        pid
        for pid, fields in process_table().items()
        if fields[STATE] != "Z"
        and int(fields[PGID]) == pgid
        and (since is None or int(fields[STARTTIME]) >= since)
    ]


# ---------------------------------------------------------------- records


# The record beside a pid file: <pidfile><RECORD_SUFFIX>. Every reader and
# writer goes through record_path and recorded_pidfiles.
RECORD_SUFFIX = ".json"


def record_path(pidfile):
    """The file that holds I(pidfile)'s record."""
    return pidfile + RECORD_SUFFIX


def recorded_pidfiles(directory):
    """The pid files in I(directory) that have a record, sorted (their processes may be gone)."""
    try:
        names = os.listdir(directory)
    except OSError:
        return []
    return sorted(
        os.path.join(directory, name[: -len(RECORD_SUFFIX)])
        for name in names
        if name.endswith(".pid" + RECORD_SUFFIX)
    )


def raw_record(pidfile):
    """The pid record as written, whether or not its process still runs."""
    try:
        with open(record_path(pidfile)) as f:
            record = json.load(f)
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) and isinstance(record.get("pid"), int) else None


def read_record(pidfile):
    """The pid record of a process that still runs, or None."""
    record = raw_record(pidfile)
    # A record without a start time is of a process that had already exited
    # when it was written: never "still running" (its pid may be anyone's now).
    if record is None or record.get("start_time") is None:
        return None
    if record.get("boot_id") not in (None, boot_id()):
        return None
    if start_time(record["pid"]) != record["start_time"]:
        return None
    return record


def write_record(pidfile, record):
    tmp = record_path(pidfile) + ".tmp"
    with open(tmp, "w") as f:
        json.dump(record, f)
    os.replace(tmp, record_path(pidfile))
    with open(pidfile, "w") as f:
        f.write(f"{record['pid']}\n")


def remove_record(pidfile):
    for path in (pidfile, record_path(pidfile)):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)


# ---------------------------------------------------------------- ports


def listener(host, port):
    """(pid, command line) of whoever listens on port, as far as /proc tells, or (None, None)."""
    inodes = set()
    hexport = f"{port:04X}"
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as f:
                next(f)
                for line in f:
                    parts = line.split()
                    if parts[1].endswith(":" + hexport) and parts[3] == "0A":
                        inodes.add(parts[9])
        except OSError:
            continue
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            for fd in os.listdir(f"/proc/{pid}/fd"):
                link = os.readlink(f"/proc/{pid}/fd/{fd}")
                if link.startswith("socket:[") and link[8:-1] in inodes:
                    with open(f"/proc/{pid}/cmdline", "rb") as f:
                        cmd = f.read().replace(b"\0", b" ").decode(errors="replace").strip()
                    return int(pid), cmd
        except OSError:
            continue
    return None, None


def port_in_use(host, port):
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return True
    return False


def port_open(host, port):
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def wait_port_free(host, port, timeout=10.0):
    """Whether host:port is free within timeout. A killed multi-threaded process shows as
    a zombie before its last thread has let go of its sockets."""
    try:
        wait_until(lambda: not port_in_use(host, port), timeout, interval=STOP_POLL)
    except WaitTimeout:
        return False
    return True


def log_tail(logfile, lines=15):
    if not logfile:
        return ""
    try:
        with open(logfile, "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - 8192))
            text = f.read().decode(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


# gunicorn's line once its arbiter holds the socket: "Listening at: <url> (<pid>)".
# With the recorded pid, it tells that the answer on the url is this process's.
GUNICORN_LISTENING = "Listening at: {url} ({pid})"


def gunicorn_listening(logfile, url, pid):
    """Whether gunicorn's log says that the process of pid listens at url."""
    try:
        with open(logfile, "rb") as f:
            text = f.read().decode(errors="replace")
    except OSError:
        return False
    return GUNICORN_LISTENING.format(url=url, pid=pid) in text


# oslo.log's default line: "<date> <time> <pid> <LEVEL> <logger> <message>"; a
# traceback is logged one line at a time with the same prefix.
# The message may start with the request context in brackets ("[-]",
# "[None req-... - - - - - -]"), and an exception's summary may follow it
# (": <exception>").
_OSLO_LOG_LINE_RE = re.compile(r"^\S+ \S+ (\d+) ([A-Z]+) (\S+) ?(?:\[[^\]]*\] )?(.*)$")
# oslo.service's loggers (oslo_service.backend._eventlet.service,
# oslo_service.backend._threading.service, oslo_service.service before the
# backends), and their messages when a service's start() raised.
_OSLO_SERVICE_LOGGERS = "oslo_service."
_START_FAILED = ("Error starting thread.", "Error starting service thread.")


def start_failure(logfile, pid):
    """Why the OpenStack service of pid failed to start, from its log, or None.

    oslo.service logs "Error starting thread." and the traceback when a
    service's start() raises, then ends only that green thread: the process
    keeps running without its service (nova-compute refused by the conductor
    with ServiceTooOld, for one). A CRITICAL line is oslo.log's last word on
    an exception that ends the process. The answer is the exception's line
    (the traceback's last), or the CRITICAL message.
    """
    try:
        with open(logfile, "rb") as f:
            text = f.read().decode(errors="replace")
    except OSError:
        return None
    failed, exception = False, None
    for line in text.splitlines():
        match = _OSLO_LOG_LINE_RE.match(line)
        if not match or int(match.group(1)) != pid:
            continue
        level, logger, message = match.group(2, 3, 4)
        if level == "CRITICAL":
            return message.strip()
        from_oslo_service = logger.startswith(_OSLO_SERVICE_LOGGERS)
        if from_oslo_service and message.startswith(_START_FAILED):
            failed, exception = True, None
        elif (
            failed
            and level == "ERROR"
            and from_oslo_service
            and message[:1].strip()
            and not message.startswith("Traceback")
        ):
            exception = message.strip()
    if failed:
        return exception or "the service failed to start"
    return None


# ---------------------------------------------------------------- stop and start


def orphans(record):
    """Pids left in the process group of a record whose leader is gone.

    Each process starts in a session of its own, so its pid is also its process
    group id; when the leader dies (SIGKILL, a crash) its workers may live on in
    that group. The kernel does not hand out a pid while a group of that id
    exists, so members of group <pid> are the leader's when the leader is gone;
    when the pid runs again (recycled) the old group is gone.
    """
    if not record:
        return []
    # Ids and start times are of one boot: after a reboot (or from a record
    # that does not say which boot) the group may be anyone's.
    if record.get("boot_id") is None or record["boot_id"] != boot_id():
        return []
    pgid = record["pid"]
    if start_time(pgid) is not None:
        return []
    return group_members(pgid, since=record.get("start_time"))


def stop(record, sig=signal.SIGTERM, timeout=30):
    """Signal a record's whole process group, wait until every member is gone; SIGKILL
    what is left after timeout. The leader alone is not enough: a worker that outlives
    it (gunicorn's, a service's helper) would keep ports and files."""
    pgid = record["pid"]
    since = record.get("start_time")
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        return
    except PermissionError:
        os.kill(pgid, sig)

    def gone():
        # While the leader lives the group does: one small read per look, not
        # the whole process table (a service's graceful stop takes seconds).
        leader = stat_fields(pgid)
        if (
            leader is not None
            and leader[STATE] != "Z"
            and int(leader[PGID]) == pgid
            and (since is None or int(leader[STARTTIME]) == since)
        ):
            return False
        return not group_members(pgid, since)

    try:
        wait_until(gone, timeout, interval=STOP_POLL)
        return
    except WaitTimeout:
        pass
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)
    # A SIGKILLed process goes at once, unless the kernel holds it (a stuck
    # disk): then what is left is left, rather than a wait without end.
    with contextlib.suppress(WaitTimeout):
        wait_until(gone, timeout, interval=STOP_POLL)


def kill_orphans(record, timeout=5.0):
    """SIGKILL what a dead leader left in its group; the pids it found."""
    pids = orphans(record)
    for pid in pids:
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)
    if pids:
        with contextlib.suppress(WaitTimeout):
            wait_until(lambda: not orphans(record), timeout, interval=STOP_POLL)
    return pids


def start(
    name,
    command,
    pidfile,
    logfile=None,
    environment=None,
    chdir=None,
    port=None,
    host="127.0.0.1",
    fingerprint=None,
    start_timeout=120,
):
    """Start a process in a session of its own and record it; its record.

    With port: refuses when another program listens there, and waits until the
    new process accepts connections. A process that exits while starting, or
    does not answer in time (then stopped), raises StartFailed with its log's end.
    """
    if port and port_in_use(host, port):
        pid, cmd = listener(host, port)
        holder = f" (pid {pid}: {cmd[:120]})" if pid else ""
        raise StartFailed(
            f"port {port} on {host} needed by {name} is already in use by another program{holder}"
        )
    for path in (pidfile, logfile):
        if path:
            os.makedirs(os.path.dirname(path), exist_ok=True)
    env = dict(os.environ)
    env.update({k: str(v) for k, v in (environment or {}).items()})
    log = open(logfile or os.devnull, "ab")  # noqa: SIM115 - handed to the child
    try:
        proc = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=chdir,
            env=env,
            start_new_session=True,
            close_fds=True,
        )
    except OSError as exc:
        raise StartFailed(f"cannot start {name}: {exc}") from None
    finally:
        log.close()
    record = {
        "name": name,
        "pid": proc.pid,
        "start_time": start_time(proc.pid),
        "boot_id": boot_id(),
        "fingerprint": fingerprint,
        "command": command,
    }
    write_record(pidfile, record)

    def listening():
        if proc.poll() is not None:
            raise StartFailed(
                f"{name} exited with status {proc.returncode} while starting; log {logfile}",
                log_tail(logfile),
            )
        return bool(port) and port_open(host, port)

    # Without a port: half a second in which an early exit is still caught.
    try:
        wait_until(listening, start_timeout if port else 0.5, interval=0.1)
    except WaitTimeout:
        if port:
            stop(record, signal.SIGTERM, 5)
            raise StartFailed(
                f"{name} did not accept connections on {host}:{port} within "
                f"{start_timeout}s; log {logfile}",
                log_tail(logfile),
            ) from None
    return record


def stop_recorded(pidfile, sig=signal.SIGTERM, timeout=30):
    """Stop the process of a pid file (and what a dead one left in its group), remove
    its record; whether anything was running."""
    record = read_record(pidfile)
    if record is not None:
        stop(record, sig, timeout)
    left = kill_orphans(raw_record(pidfile))
    remove_record(pidfile)
    return record is not None or bool(left)
