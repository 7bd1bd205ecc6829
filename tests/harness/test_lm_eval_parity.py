"""lm-evaluation-harness's own loader and evaluator on an exported task, with a model class of
the test's (no weights): the task loads from a local export and from a dataset as the Hub
serves it, its stop rule never cuts a chat reply's answer block, and its table (overall, per
probe, per length) gives the numbers ``memgen score`` gives on the same answers."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from eco_helpers import cli
from lm_eval_helpers import task_yaml

from memgen import scorers
from memgen.harness.runners import cut_at_stop

pytestmark = pytest.mark.slow  # importing lm_eval alone takes seconds

PREAMBLE = "Here are the answers:\n\n"




def _parity_request(fmt: str):
    from memgen.pipeline.request import Request

    return Request(families=("overwrite", "discard", "mixed"), renderings=("text",), lengths=(1024, 2048),
                   episodes=2, seed=3, format=fmt)


@pytest.fixture(scope="module")
def parity_dataset(tmp_path_factory):
    """overwrite, discard and mixed (every probe but version) at two lengths, text rendering."""
    from memgen.pipeline.job import generate

    root = tmp_path_factory.mktemp("parity") / "ds"
    generate(_parity_request("parquet"), root)
    return root


@pytest.fixture(scope="module")
def arrow_parity_dataset(tmp_path_factory):
    """The same episodes in Arrow IPC shards."""
    from memgen.pipeline.job import generate

    root = tmp_path_factory.mktemp("parity-arrow") / "ds"
    generate(_parity_request("arrow"), root)
    return root


def _reply(doc_id: str, golds: list[str]) -> str:
    """A chat-style reply: a preamble and a blank line, then about two answers in three right."""
    lines = []
    for n, gold in enumerate(golds, start=1):
        right = hashlib.sha256(f"{doc_id}/{n}".encode()).digest()[0] % 3 != 0
        lines.append(f"{n}: {gold if right else 'nobody knows ' + str(n)}")
    return PREAMBLE + "\n".join(lines)


def _evaluate(task_dir: Path, golds_by_prompt: dict[str, tuple[str, list[str]]]):
    """lm-eval's simple_evaluate of the task in ``task_dir`` with a model that answers every
    prompt with :func:`_reply` and records the generation arguments it was given."""
    lm_eval = pytest.importorskip("lm_eval")
    from lm_eval.api.model import LM
    from lm_eval.tasks import TaskManager

    seen: list[dict] = []

    class Replier(LM):
        def generate_until(self, requests, disable_tqdm=False):
            out = []
            for req in requests:
                prompt, kwargs = req.args
                seen.append(dict(kwargs))
                doc_id, golds = golds_by_prompt[prompt]
                reply = _reply(doc_id, golds)
                out.append(cut_at_stop(reply, kwargs.get("until") or ()))  # what a server's stop rule leaves
            return out

        def loglikelihood(self, requests, disable_tqdm=False):
            raise AssertionError("memgen's task only generates; lm-eval asked for loglikelihoods")

        def loglikelihood_rolling(self, requests, disable_tqdm=False):
            raise AssertionError("memgen's task only generates; lm-eval asked for rolling loglikelihoods")

    tm = TaskManager(include_path=str(task_dir), include_defaults=False)
    res = lm_eval.simple_evaluate(model=Replier(), tasks=["memgen"], task_manager=tm, log_samples=True,
                                  bootstrap_iters=0)
    return res, seen


def _golds_by_prompt(root: Path) -> dict[str, tuple[str, list[str]]]:
    from memgen.harness.text_dataset import iter_episodes
    from memgen.io.dataset import Dataset

    ds = Dataset.open(root)
    return {ep.prompt: (ep.id, list(ep.answers)) for c in ds.configs for ep in iter_episodes(ds, c)}


def _check_parity(res, seen, root: Path, tmp_path: Path) -> None:
    assert seen and all(not k.get("until") for k in seen)  # no stop string: only end of sequence
    samples = tmp_path / "samples.jsonl"
    samples.write_text("".join(json.dumps(s, default=str) + "\n" for s in res["samples"]["memgen"]))
    for s in res["samples"]["memgen"]:
        assert s["filtered_resps"][0].startswith(PREAMBLE + "1: ")  # nothing cut the answers away
    table = scorers.score(root, samples).to_table().to_pylist()
    got = res["results"]["memgen"]

    def share(rows):
        return sum(r["outcome"] == "correct" for r in rows) / len(rows)

    assert 0.3 < share(table) < 0.9  # a mix of right and wrong answers
    assert got["query_accuracy,none"] == pytest.approx(share(table))
    probes = sorted({r["probe"] for r in table})
    assert len(probes) >= 4
    for p in probes:
        assert got[f"probe_{p},none"] == pytest.approx(share([r for r in table if r["probe"] == p])), p
    for n in (1024, 2048):
        assert got[f"length_{n},none"] == pytest.approx(share([r for r in table if r["target_length"] == n])), n
    # weighting by episode would differ: the episodes do not all ask the same number of questions
    per_episode: dict[str, list[bool]] = {}
    for r in table:
        per_episode.setdefault(r["id"], []).append(r["outcome"] == "correct")
    by_episode = sum(sum(v) / len(v) for v in per_episode.values()) / len(per_episode)
    assert by_episode != pytest.approx(share(table))


def test_lm_eval_scores_a_local_export_as_memgen_score_does(parity_dataset, tmp_path):
    tasks = tmp_path / "tasks"
    rc, _, err = cli("export", str(parity_dataset), "--format", "lm-eval", "--out", str(tasks))
    assert rc == 0, err
    task = task_yaml(tasks / "memgen.yaml")
    assert task["tag"] == ["longcxt"] and task["custom_dataset"] == "!function utils.load_docs"
    assert task["dataset_kwargs"]["data_files"]["test"] == [f"data/{c}.jsonl" for c in task["metadata"]["configs"]]
    text = "".join(p.read_text() for p in tasks.iterdir() if p.is_file())
    assert str(tmp_path) not in text and str(parity_dataset) not in text  # no absolute path anywhere
    moved = tmp_path / "elsewhere" / "shared-tasks"  # a task folder works wherever it is put
    moved.parent.mkdir()
    tasks.rename(moved)
    res, seen = _evaluate(moved, _golds_by_prompt(parity_dataset))
    _check_parity(res, seen, parity_dataset, tmp_path)


@pytest.mark.parametrize("fmt", ["parquet", "arrow"])
def test_lm_eval_scores_a_published_dataset_loaded_by_name(request, tmp_path, fmt):
    """``--hub-name``: the task reads the repo's shards by name (here the dataset folder stands in
    for the repo: ``datasets`` reads a Hub repo and a folder with the same card alike), Parquet
    or Arrow shards alike."""
    parity_dataset = request.getfixturevalue("parity_dataset" if fmt == "parquet" else "arrow_parity_dataset")
    tasks = tmp_path / "hub-tasks"
    rc, _, err = cli("export", str(parity_dataset), "--format", "lm-eval", "--hub-name", "my-lab/memgen-eps",
                     "--out", str(tasks))
    assert rc == 0, err
    assert not (tasks / "data").exists()
    text = (tasks / "memgen.yaml").read_text()
    body = task_yaml(tasks / "memgen.yaml")
    assert body["dataset_path"] == "my-lab/memgen-eps" and body["doc_to_text"] == "!function utils.doc_to_text"
    files = body["dataset_kwargs"]["data_files"]["test"]
    assert len(files) == 6 and all(f.startswith("data/") and f.endswith(f".{fmt}") for f in files)
    (tasks / "memgen.yaml").write_text(text.replace("my-lab/memgen-eps", str(parity_dataset)))
    res, seen = _evaluate(tasks, _golds_by_prompt(parity_dataset))
    _check_parity(res, seen, parity_dataset, tmp_path)


def test_one_published_config_is_loaded_by_config_name(parity_dataset, tmp_path):
    tasks = tmp_path / "one"
    rc, _, err = cli("export", str(parity_dataset), "--format", "lm-eval", "--hub-name", "my-lab/memgen-eps",
                     "--config", "mixed-text-2048", "--out", str(tasks))
    assert rc == 0, err
    text = (tasks / "memgen.yaml").read_text()
    body = task_yaml(tasks / "memgen.yaml")
    assert (body["dataset_path"], body["dataset_name"], body["test_split"]) == \
        ("my-lab/memgen-eps", "mixed-text-2048", "test")
    (tasks / "memgen.yaml").write_text(text.replace("my-lab/memgen-eps", str(parity_dataset)))
    res, _ = _evaluate(tasks, _golds_by_prompt(parity_dataset))
    assert res["results"]["memgen"]["sample_len"] == 2
    assert "length_1024,none" not in res["results"]["memgen"]
