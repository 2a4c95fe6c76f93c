import sys

from shard_jobs.cli import main

sys.exit(main())
