"""Helpers of the ecosystem tests: the CLI in a fresh process, and what the tiny model earns."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from memgen.io.dataset import Dataset


def cli(*args: str, env: dict | None = None, timeout: float = 600) -> tuple[int, str, str]:
    """``memgen ARGS`` in a fresh process (what a user sees: exit code, stdout, stderr)."""
    p = subprocess.run([sys.executable, "-m", "memgen.cli", *args], capture_output=True, text=True,
                       env={**os.environ, **(env or {})}, timeout=timeout)
    return p.returncode, p.stdout, p.stderr


def one_error_line(err: str, *words: str) -> None:
    """``err`` is exactly one ``memgen: error:`` line holding every word, and no traceback."""
    lines = [x for x in err.splitlines() if x.strip()]
    assert len(lines) == 1 and lines[0].startswith("memgen: error:"), err
    assert "Traceback" not in err
    for w in words:
        assert w in lines[0], (w, lines[0])


def queries(root: Path) -> list[dict]:
    """Every query of a text dataset: id, qid, position in its episode, probe and gold text."""
    ds = Dataset.open(root)
    out = []
    for config in ds.configs:
        for row in ds.table(config).select(["id", "queries"]).to_pylist():
            for n, q in enumerate(row["queries"]):
                out.append({"id": row["id"], "qid": q["qid"], "n": n, "probe": q["probe"],
                            "answer_text": q["answer_text"]})
    return out


def tiny_model_outcomes(root: Path) -> dict[tuple[str, int], str]:
    """The outcome of every query when each episode is answered ``1: unknown`` (the tiny
    model's reply): question 1 is correct where its key has no value, else false_absent; every
    other question has no answer (unparsed)."""
    return {(q["id"], q["qid"]): ("unparsed" if q["n"] > 0 else
                                  "correct" if q["answer_text"] == "unknown" else "false_absent")
            for q in queries(root)}


def outcomes_of(root: Path, predictions: Path) -> dict[tuple[str, int], str]:
    """(id, qid) -> outcome, as memgen's scorer classifies ``predictions`` on ``root``."""
    from memgen import scorers

    t = scorers.score(root, predictions).to_table().select(["id", "qid", "outcome"]).to_pylist()
    return {(r["id"], r["qid"]): r["outcome"] for r in t}
