"""slot_read: queries attend over S slots by softmax over the valid ones (naive.py, triton.py)."""
