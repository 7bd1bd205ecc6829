"""The generate job: a request, its shard tasks, building and writing shards, resume, and where
tasks run (local workers, Ray)."""
