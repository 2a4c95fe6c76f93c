"""The bench's variants: their names, the job each shard variant runs, the
floor's build and the from-scratch variants' own cloud."""

import json

from shard_jobs import paths

VARIANTS = (
    "from-scratch-fresh",
    "from-scratch-preinstalled",
    "shard",
    "floor",
    "shard-glance-api",
    "shard-nova-compute-upgrade",
    "shard-tempest",
    "from-scratch-tempest",
)
# The other jobs take minutes more per run (the upgrade job two builds and a
# restart; the glance job its own glance source; tempest its selection): run
# them with --only (shard-tempest with from-scratch-tempest, its comparison).
DEFAULT_VARIANTS = VARIANTS[:4]
# Names a variant had before.
RENAMED = {"from-scratch": "from-scratch-preinstalled (or from-scratch-fresh)"}
# The variants that are ./shard run of a job, and that job.
SHARD_JOBS = {
    "shard": "shard-nova-compute",
    "shard-glance-api": "shard-glance-api",
    "shard-nova-compute-upgrade": "shard-nova-compute-upgrade",
    "shard-tempest": "shard-nova-compute-tempest",
}
JOB = SHARD_JOBS["shard"]
# The from-scratch variants: whether each installs a new services' virtualenv
# (as on a fresh node), and the cycle it runs on its cloud (python -m ...).
FROM_SCRATCH = {
    "from-scratch-fresh": {"fresh": True, "cycle": "shard_jobs.bench_floor"},
    "from-scratch-preinstalled": {"fresh": False, "cycle": "shard_jobs.bench_floor"},
    "from-scratch-tempest": {"fresh": True, "cycle": "shard_jobs.bench_tempest"},
}
# The floor builds what the shard variant's job builds: this profile's package.
FLOOR_PROFILE = paths.ROLES / "shard" / "profiles" / "nova-compute" / "profile.yaml"
# The floor's dependency virtualenvs (one per requirements, constraints and
# interpreter), kept between benches as the job's build keeps its cache.
FLOOR_CACHE = paths.HOME / "cache" / "bench-floor"
# The from-scratch variants' own cloud: other ports, databases, vhost and users
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
# The shard and floor variants use the default cloud: the one ./shard cloud up
# manages in this environment (SHARD_CLOUD_DIR and SHARD_CLOUD_VAR_* included,
# as CI sets them for a cloud of its own names).
DEFAULT_CLOUD_DIR = paths.CLOUD_DIR
