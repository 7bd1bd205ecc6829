"""End to end on generated data (every family; token, chunk and bridge renderings): an oracle
that replays the stored events scores 100%, a constant "unknown" scores exactly the share of
absent answers, and answering a trap lands in the outcome its precedence says."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner
from scorer_helpers import reference

from memgen.cli.score import score as score_command
from memgen.format.codes import ABSENT, ASKS, OUTCOMES
from memgen.generators.registry import FAMILIES
from memgen.io.dataset import Dataset
from memgen.ir.episode import Episode, Event, Query
from memgen.ir.replay import replay
from memgen.scorers.answers import TokenVocab
from memgen.scorers.dataset import read_dataset
from memgen.scorers.scoring import score

TRAPS = ("stale", "distractor", "other_keys", "deleted")


@pytest.fixture(scope="module")
def frame(generated):
    return read_dataset(generated)


@pytest.fixture(scope="module")
def vocab(frame):
    return TokenVocab.from_manifest(frame.manifest)


def replayed_answers(root) -> dict[tuple[str, int], int]:
    """(id, qid) -> the answer ``ir.replay`` gives for the stored events, each query asked
    after the events that start before it."""
    out = {}
    ds = Dataset.open(root)
    for name in ds.configs:
        for row in ds.table(name).select(["id", "family", "events", "queries"]).to_pylist():
            events = tuple(Event(e["op"], e["key"], e["value"], signal=e["signal"], kind=e["kind"],
                                 alias=e["alias"], start=e["start"], end=e["end"]) for e in row["events"])
            starts = np.array([e.start for e in events])
            queries = tuple(Query(q["qid"], q["key"], q["ask"], q["version"], start=q["start"], end=q["end"],
                                  after=int(np.searchsorted(starts, q["start"])) - 1) for q in row["queries"])
            ep = replay(Episode(row["id"], row["family"], events, queries))
            out.update({(row["id"], q.qid): q.answer for q in ep.queries})
    return out


def test_every_family_and_rendering_is_present(frame):
    assert set(frame.family) == set(FAMILIES)
    assert set(frame.rendering) == {"token", "chunk", "bridge"}


def test_replay_oracle_scores_100_percent_everywhere(generated, frame, vocab):
    answers = replayed_answers(generated)
    preds = {k: (vocab.absent_id if a == ABSENT else vocab.value_offset + a) for k, a in answers.items()}
    r = score(frame, preds)
    assert r.missing == 0 and r.n == frame.n_queries
    assert r.accuracy == 1.0
    for fam in FAMILIES:
        assert (r.outcome[frame.family[frame.row] == fam] == 0).all(), fam


def test_constant_unknown_scores_the_share_of_absent_answers(frame, vocab):
    r = score(frame, np.full(frame.n_queries, vocab.absent_id))
    absent = frame.answer == ABSENT
    assert r.correct == int(absent.sum())
    assert r.accuracy == absent.mean()
    assert set(np.asarray(OUTCOMES)[r.outcome[~absent]]) == {"false_absent"}
    for fam in FAMILIES:
        sel = frame.family[frame.row] == fam
        assert (r.outcome[sel] == 0).sum() == (absent & sel).sum(), fam


@pytest.mark.parametrize("trap", TRAPS)
def test_answering_a_trap_lands_where_the_precedence_says(frame, vocab, trap):
    rag = getattr(frame.traps, trap)
    has = np.diff(rag.offsets) > 0
    assert has.any(), f"generated data has no {trap} trap"
    preds = np.where(frame.answer >= 0, frame.answer + vocab.value_offset, vocab.absent_id)
    first = rag.values[rag.offsets[:-1][has]]
    preds[has] = first + vocab.value_offset
    r = score(frame, preds)
    for i in np.flatnonzero(has)[:2000]:
        traps = {f: getattr(frame.traps, f).row(i).tolist() for f in TRAPS}
        want = reference(int(preds[i] - vocab.value_offset), int(frame.answer[i]), ASKS[frame.ask[i]], traps)
        assert OUTCOMES[r.outcome[i]] == want


def test_expected_outcomes_occur_on_generated_data(frame, vocab):
    """The families produce the situations the outcomes name: answering the first stale value
    gives stale and wrong_version, the deleted value gives resurrected, and so on."""
    seen = set()
    for trap in TRAPS:
        rag = getattr(frame.traps, trap)
        has = np.diff(rag.offsets) > 0
        preds = np.full(frame.n_queries, vocab.absent_id)
        preds[has] = rag.values[rag.offsets[:-1][has]] + vocab.value_offset
        seen |= set(np.asarray(OUTCOMES)[score(frame, preds).outcome[has]])
    assert {"stale", "wrong_version", "distractor", "cross_key", "resurrected"} <= seen


def test_cli_on_generated_data(generated, frame, vocab, tmp_path):
    ids = frame.ids.to_pylist()
    path = tmp_path / "oracle.jsonl"
    with open(path, "w") as fh:
        for i in range(frame.n_queries):
            a = int(frame.answer[i])
            t = vocab.absent_id if a < 0 else vocab.value_offset + a
            fh.write(json.dumps({"id": ids[frame.row[i]], "qid": int(frame.qid[i]), "prediction": t}) + "\n")
    r = CliRunner().invoke(score_command, ["--dataset", str(generated), "--predictions", str(path),
                                           "--format", "json", "--out", str(tmp_path / "rep")])
    assert r.exit_code == 0, r.output
    (m,) = json.loads(r.stdout)["models"]
    assert m["overall"]["accuracy"] == 1.0 and m["queries"] == frame.n_queries
    assert set(m["by_probe"]) == {"write", "overwrite", "version", "distractor", "no_write_signal", "discard"}
    assert set(m["by_length"]) == {"512", "1024"}
