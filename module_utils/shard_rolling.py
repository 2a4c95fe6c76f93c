# Copyright shard-jobs contributors
# SPDX-License-Identifier: Apache-2.0
"""The rolling upgrade's sampler: the one home of what it does each second and of its figures.

While the shards of a run are upgraded one at a time, this exercises the
cloud's API and the servers every second: it lists the servers, shows each
server that must survive, and stops or starts (alternately) one server on a
shard that is not being upgraded. Each call is one JSON line of the records
file: when, which call, on what, which shard was being upgraded, whether it
succeeded and how long it took. On SIGTERM it finishes the second, starts
again every server it left stopped (waiting until it is ACTIVE) and writes
the summary (``summarize``): the calls, the success rate, per call and per
upgraded shard.

The upgrade job copies this file to the node, with the two it imports
(shard_jsonl, shard_waits), and runs it with the OpenStack client's
interpreter as a service process (shard_process, pid-recorded, so that
teardown stops it); the tests import ``summarize`` through
``shard_jobs.rules``. Standard library at import; openstacksdk only when it
samples.
"""

import argparse
import contextlib
import json
import signal
import sys
import time

try:  # a module of module_utils: the tests and the CLI (shard_jobs.rules)
    from ansible.module_utils.shard_jsonl import read_jsonl
    from ansible.module_utils.shard_waits import WaitTimeout, wait_until
except ImportError:  # the script on a node, its two siblings copied beside it
    from shard_jsonl import read_jsonl
    from shard_waits import WaitTimeout, wait_until

# Seconds between the starts of two samples.
PERIOD = 1.0
# Seconds between two looks at a server that is changing state.
POLL = 0.5
# Seconds a server is given to settle, and to come back ACTIVE, at the end.
SETTLE_TIMEOUT = 120
# A server in one of these task states is busy: no action is sent to it.
_ACTIONS = {"ACTIVE": "stop", "SHUTOFF": "start"}


def summarize(records):
    """The figures of some records: calls, successes, success rate, per call and per shard."""

    def tally(rows):
        calls = len(rows)
        ok = sum(1 for r in rows if r.get("ok"))
        return {"calls": calls, "ok": ok, "success_rate": round(ok / calls, 4) if calls else None}

    out = tally(records)
    out["samples"] = len({r.get("sample") for r in records})
    out["by_call"] = {
        op: tally([r for r in records if r.get("op") == op])
        for op in sorted({r.get("op") for r in records})
    }
    out["by_upgrading"] = {
        host: tally([r for r in records if r.get("upgrading") == host])
        for host in sorted({r.get("upgrading") or "" for r in records} - {""})
    }
    errors = []
    for r in records:
        if not r.get("ok") and r.get("error") and r["error"] not in errors:
            errors.append(r["error"])
    out["errors"] = errors[:5]
    return out


class Sampler:
    def __init__(self, conn, servers, upgrading_file, records):
        self.conn = conn
        # [{"server": <id>, "host": ...}]: the servers that must survive, and their shards.
        self.servers = servers
        self.upgrading_file = upgrading_file
        self.records = records
        self.sample = 0
        self.touched = set()
        self.stopping = False
        self.turn = 0

    def upgrading(self):
        try:
            with open(self.upgrading_file) as f:
                return f.read().strip()
        except OSError:
            return ""

    def call(self, op, target, upgrading, fn):
        start = time.monotonic()
        row = {"t": round(time.time(), 3), "sample": self.sample, "op": op, "target": target}
        row["upgrading"] = upgrading
        try:
            result = fn()
            row["ok"] = True
        except Exception as exc:  # what the API said is the record
            result = None
            row["ok"] = False
            first = str(exc).splitlines()[0][:200] if str(exc) else ""
            row["error"] = f"{type(exc).__name__}: {first}"
        row["ms"] = int((time.monotonic() - start) * 1000)
        self.records.write(json.dumps(row) + "\n")
        self.records.flush()
        return result

    def once(self):
        upgrading = self.upgrading()
        self.call("list", "", upgrading, lambda: list(self.conn.compute.servers()))
        shown = {}
        for server in self.servers:
            got = self.call(
                "show",
                server["server"],
                upgrading,
                lambda s=server: self.conn.compute.get_server(s["server"]),
            )
            if got is not None:
                shown[server["server"]] = got
        # One action a second, on the servers of the shards not being upgraded, in turn.
        candidates = [s for s in self.servers if s["host"] != upgrading and s["server"] in shown]
        if candidates:
            server = candidates[self.turn % len(candidates)]
            self.turn += 1
            got = shown[server["server"]]
            action = _ACTIONS.get(got.status) if not got.task_state else None
            # Read again right before acting: the upgrade may have moved on to
            # this server's shard while the sample listed and showed.
            upgrading = self.upgrading()
            if action and server["host"] != upgrading:
                self.touched.add(server["server"])
                fn = getattr(self.conn.compute, f"{action}_server")
                self.call(action, server["server"], upgrading, lambda: fn(server["server"]))
        self.sample += 1

    def run(self):
        next_at = time.monotonic()
        while not self.stopping:
            self.once()
            next_at += PERIOD
            # The sampler keeps its pace: a slow second is not made up for.
            next_at = max(next_at, time.monotonic())
            while not self.stopping and time.monotonic() < next_at:
                time.sleep(min(POLL, max(0.0, next_at - time.monotonic())))

    def restore(self):
        """Every server the sampler stopped: started again, and ACTIVE."""
        deadline = time.monotonic() + SETTLE_TIMEOUT
        for server_id in sorted(self.touched):
            server = None

            def settled(server_id=server_id):
                nonlocal server
                server = self.conn.compute.get_server(server_id)
                return not server.task_state

            # Unsettled at the deadline: acted on as it is, and the wait for
            # ACTIVE below says what went wrong.
            with contextlib.suppress(WaitTimeout):
                wait_until(settled, deadline=deadline, interval=POLL)
            if server.status == "SHUTOFF":
                self.conn.compute.start_server(server_id)
            if server.status != "ACTIVE":
                left = max(1, int(deadline - time.monotonic()))
                self.conn.compute.wait_for_server(server, status="ACTIVE", interval=POLL, wait=left)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cloud", required=True)
    parser.add_argument("--servers", required=True, help="JSON file: [{server, host}]")
    parser.add_argument("--upgrading", required=True, help="file naming the shard being upgraded")
    parser.add_argument("--records", required=True)
    parser.add_argument("--summary", required=True)
    args = parser.parse_args(argv)

    import openstack

    with open(args.servers) as f:
        servers = json.load(f)
    conn = openstack.connect(cloud=args.cloud)
    with open(args.records, "a") as records:
        sampler = Sampler(conn, servers, args.upgrading, records)

        def stop(signum, frame):
            sampler.stopping = True

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        sampler.run()
        restored = None
        try:
            sampler.restore()
        except Exception as exc:
            restored = f"{type(exc).__name__}: {str(exc)[:200]}"
    summary = summarize(read_jsonl(args.records))
    summary["restored"] = restored or "ok"
    with open(args.summary, "w") as f:
        json.dump(summary, f, indent=2)
    return 0 if restored is None else 1


if __name__ == "__main__":
    sys.exit(main())
