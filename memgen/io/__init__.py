"""Dataset folders on disk: atomic files, shards, stores, the manifest and its verification, the
dataset card, the Hub."""
