"""block_topk_attention: each query's causal local block plus its top-k earlier blocks, NSA-style;
selection (``select_blocks``) and attention are separate steps (naive.py, triton.py)."""
