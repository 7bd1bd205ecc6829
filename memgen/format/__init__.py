"""The on-disk contract that every stage imports: op / ask / probe / outcome codes, the Arrow
schema, the token vocabulary, names of configs and shards, and the errors that reach the user.
Imports nothing of memgen."""
