# Copyright shard-jobs contributors
# SPDX-License-Identifier: Apache-2.0
"""Ansible module: the result of a tempest run on a shard, and where its servers ran."""

DOCUMENTATION = r"""
---
module: shard_tempest_result
short_description: Read a tempest run's results; check that its servers ran on the shard
description:
  - Reads the run's results from I(results_csv) (C(subunit2csv) of the
    run's subunit stream) and counts passed, failed and skipped tests.
  - Lists, as the cloud's admin sees them, every server of the run's
    tempest projects (those carrying I(label)), deleted ones included
    (nova keeps them until an operator archives them), and checks that
    each ran on I(host). A server refused before scheduling never ran and
    is not counted as elsewhere.
  - Fails, in one line, when a test failed (naming the first ones), when no
    test ran, or when a server ran elsewhere (naming it). Read-only; the
    same in check mode.
options:
  label:
    description: Label of the run (C(shard-<hex>)); its tempest projects carry it.
    type: str
    required: true
  host:
    description: The host of the shard, where every server must have run.
    type: str
    required: true
  results_csv:
    description: Path of C(subunit2csv)'s output for the run.
    type: path
    required: true
  exit_status_file:
    description:
      - Path of a file holding C(tempest run)'s exit status. A status other than 0
        with no failed test in the results fails too (tempest stopped before
        its stream said why, for example).
    type: path
extends_documentation_fragment:
  - shard.openstack
  - shard.phase
author:
  - shard-jobs contributors
"""

EXAMPLES = r"""
- name: Read tempest's results; check its servers' hosts
  shard_tempest_result:
    cloud: my-cloud
    label: shard-3f2a9c01b7d4
    host: shard-3f2a9c01b7d4
    results_csv: /home/zuul/.shard-jobs/builds/shard-3f2a9c01b7d4/tempest/results.csv
  register: tempest
"""

RETURN = r"""
tests:
  description: C(passed), C(failed), C(skipped), C(total), and C(failures) (test names).
  returned: always
  type: dict
servers:
  description: How many servers the run's projects had (deleted ones included), and on which hosts.
  returned: always
  type: dict
  sample: {count: 31, hosts: {shard-3f2a9c01b7d4: 31}}
"""

from collections import Counter

from ansible.module_utils.shard_openstack import ShardModule
from ansible.module_utils.shard_resources import find
from ansible.module_utils.shard_tempest import landing_errors, results

try:
    from openstack import exceptions as sdk_exceptions
except ImportError:  # pragma: no cover - reported by ShardModule.connect
    sdk_exceptions = None

# Names shown in a failure's one line.
SHOWN = 5


class TempestResultModule(ShardModule):
    argument_spec = dict(
        label=dict(type="str", required=True),
        host=dict(type="str", required=True),
        results_csv=dict(type="path", required=True),
        exit_status_file=dict(type="path"),
    )
    module_kwargs = dict(supports_check_mode=True)

    def run(self):
        label = self.require_label()
        try:
            with open(self.params["results_csv"]) as f:
                tests = results(f.read())
        except OSError as exc:
            self.fail_json(msg=f"cannot read tempest's results: {exc.strerror}: {exc.filename}")
        found, _ = find(self.conn, ["projects"], lambda candidate: candidate == label)
        servers = []
        for project in found["projects"]:
            servers += self._servers(project["id"])
        hosts = Counter(server["host"] or "none" for server in servers)
        summary = dict(count=len(servers), hosts=dict(hosts))
        elsewhere = landing_errors(servers, self.params["host"])
        if elsewhere:
            more = f" (and {len(elsewhere) - 1} more)" if len(elsewhere) > 1 else ""
            self.fail_json(msg=elsewhere[0] + more, tests=tests, servers=summary)
        if tests["failed"]:
            names = ", ".join(tests["failures"][:SHOWN])
            more = (
                f" and {len(tests['failures']) - SHOWN} more"
                if len(tests["failures"]) > SHOWN
                else ""
            )
            self.fail_json(
                msg=f"tempest: {tests['failed']} of {tests['total']} tests failed: {names}{more}",
                tests=tests,
                servers=summary,
            )
        status = self._exit_status()
        if status:
            self.fail_json(
                msg=f"tempest exited with status {status} and no failed test in its results: "
                "see tempest-run.txt in the logs",
                tests=tests,
                servers=summary,
            )
        if not tests["passed"]:
            self.fail_json(
                msg=f"tempest: no test passed ({tests['total']} run, {tests['skipped']} skipped): "
                "does the selection match any test the cloud can run?",
                tests=tests,
                servers=summary,
            )
        self.exit_json(changed=False, tests=tests, servers=summary)

    def _exit_status(self):
        """tempest run's exit status, from exit_status_file (0 without one)."""
        path = self.params["exit_status_file"]
        if not path:
            return 0
        try:
            with open(path) as f:
                return int(f.read().strip() or 0)
        except (OSError, ValueError) as exc:
            self.fail_json(msg=f"cannot read tempest's exit status from {path}: {exc}")

    def _servers(self, project_id):
        """The project's servers, live and deleted, as dicts (id, name, status, host)."""
        servers = []
        for deleted in (False, True):
            url = f"/servers/detail?all_tenants=1&project_id={project_id}"
            if deleted:
                url += "&deleted=true"
            response = self.conn.compute.get(url)
            sdk_exceptions.raise_from_response(response)
            for server in response.json()["servers"]:
                servers.append(
                    dict(
                        id=server["id"],
                        name=server["name"],
                        status=server["status"],
                        host=server.get("OS-EXT-SRV-ATTR:host"),
                    )
                )
        return servers


def main():
    TempestResultModule()()


if __name__ == "__main__":
    main()
