"""Other harnesses and LLMs: lm-evaluation-harness and JSONL exports, the text-dataset reader,
and runners (Hugging Face, OpenAI-compatible)."""
