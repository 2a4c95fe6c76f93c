"""./shard bench: what testing a change costs, several ways, on this machine.

    from-scratch-fresh         a cloud of its own (not the default one) from
                               nothing, as devstack on a fresh CI node: a new
                               services' virtualenv from the package cache,
                               configure, start; then the floor's cycle on it
    from-scratch-preinstalled  the same with the services' virtualenv kept
                               (its packages pre-installed)
    shard                      ./shard run shard-nova-compute against the
                               running default cloud
    floor                      the shard job's work in a plain openstacksdk
                               script (bench_floor.py): the build of the
                               change, then the same cycle
    shard-glance-api           ./shard run shard-glance-api (not by default)
    shard-nova-compute-upgrade ./shard run shard-nova-compute-upgrade (not by
                               default; needs a cloud whose ordinary compute
                               runs the previous release, for example
                               SHARD_CLOUD_VAR_COMPUTE_NOVA=33.0.2)
    shard-tempest              ./shard run shard-nova-compute-tempest (not by
                               default): tempest's selection on the shard
    from-scratch-tempest       from-scratch-fresh with tempest's selection
                               after the floor's exercise (bench_tempest.py,
                               tempest in a new virtualenv, as on a fresh
                               node; not by default)

Each variant runs --repeat times (interleaved, so that the machine's other work
spreads over all of them); the table shows medians. For each run: wall seconds,
CPU seconds of every process on the machine (/proc/stat busy time), the peak of
the machine's memory in use above its level at the start, the OpenStack
processes the run started, the CPU seconds of the code under test (the service
that runs the change) and its share of the machine's CPU, where the rest of it
went (the target cloud's processes, the harness's, the rest of the machine:
a shard run's report.json, or the bench's own split), and the Ansible tasks
and module processes the run started (from the run's job-output.txt, or the
cloud's cloud-up.log). A shard run's figures come from the files it leaves in
its run directory (summary.json, logs/shard/report.json, job-output.txt), never
from its terminal output. Then the scaling of shard jobs run at once, and the
harness overhead: where a shard run's time goes beyond the floor, per phase.
With --split, one more shard run (not in the medians) with its process tree
sampled: where its harness CPU goes, by kind of process. Everything goes to a
JSON file too.

The package, by concern: variants (what each variant is), launch (one run of
a variant as a process), sampling (the machine's CPU and memory and the run's
OpenStack processes while it runs), run_files (a finished run's figures, from
the files it left), split (what each process of a shard run's tree is, for
--split), summary (medians, ratios, overhead, notes), table (the
result as text) and session (every variant --repeat times, then the scaling;
the JSON file). ./shard bench's settings are shard_jobs.settings.BenchSettings.
"""


class BenchError(Exception):
    """The bench cannot go on: one line, exit status 2."""
