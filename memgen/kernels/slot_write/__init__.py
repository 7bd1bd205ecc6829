"""slot_write: gated write / overwrite / discard of slot rows with exact version counters and a
protected mask (naive.py, triton.py)."""
