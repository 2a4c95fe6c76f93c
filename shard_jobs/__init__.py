"""shard-jobs: test an OpenStack change as a new shard of an existing cloud."""
