"""What every model shares: the model interface and registry, the token-stream reader, and the
query-time retrieval helpers."""
