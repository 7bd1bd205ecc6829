"""Fuzzed bad input (DESIGN.md section 9): generated bad arguments and bad files, driven through
the ``memgen`` command in this process (click's CliRunner on ``memgen.cli.main``, whose group
turns errors into lines and exit codes) and, for a sample, in a subprocess.

For every case: a non-zero exit, exactly one ``memgen: error:`` line on stderr (``verify`` may
print ``memgen: bad:`` lines before it), no other stderr line, no traceback, and no file
changed, added or left half-written.  Every generated case is bad by construction (a mutation
that the contract says must be refused), so a case that exits 0 is a bug the test reports.

Arguments never hold a NUL character: no shell can pass one.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from memgen.cli import main
from memgen.format.codes import DISTRACTOR_KINDS
from memgen.generators.registry import FAMILIES
from memgen.pipeline.job import generate
from memgen.pipeline.request import Request

pytestmark = pytest.mark.slow

#: distinct cases run, per test (keys with the temporary folder's name taken out)
CASES: dict[str, set[str]] = {}

TEXT = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=12)
RENDERINGS = ("token", "chunk", "bridge", "text")
SETTINGS = dict(deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                       HealthCheck.filter_too_much])


def _csv(s: str) -> list[str]:
    return [x.strip() for x in s.split(",") if x.strip()]


def _bad_names(valid: set[str]) -> st.SearchStrategy[str]:
    """A --family/--rendering value that names something unknown."""
    return TEXT.filter(lambda s: any(x not in valid for x in _csv(s)))


#: a --family/--rendering/--length value that names nothing (given alone, so nothing is left)
NOTHING = st.lists(st.sampled_from(["", " ", ","]), max_size=3).map("".join)


def _not_int(s: str) -> bool:
    try:
        int(s)
    except ValueError:
        return True
    return False


def _not_float(s: str) -> bool:
    try:
        float(s)
    except ValueError:
        return True
    return False


def _bad_depth(s: str) -> bool:
    try:
        lo, hi = (float(x) for x in s.split(","))
    except ValueError:
        return True
    return not 0.0 <= lo < hi <= 1.0


def _ints(lo: int | None = None, hi: int | None = None) -> st.SearchStrategy[str]:
    return st.integers(min_value=lo, max_value=hi).map(str)


NOT_INT = TEXT.filter(_not_int)
NOT_FLOAT = TEXT.filter(_not_float)
OUT_OF_UNIT = st.one_of(st.floats(max_value=-1e-9), st.floats(min_value=1.000001), st.just(float("nan"))).map(str)
NOT_POSITIVE = st.one_of(st.floats(max_value=0.0), st.just(float("nan"))).map(str)
OPTION_NAMES = {p.opts[0] for p in main.commands["generate"].params if p.opts}

#: (flag, strategy of a value that flag must refuse, extra flags the case needs); a flag that ends
#: in "!" replaces every other use of the flag (a value that only fails alone)
GENERATE_MUTATIONS: list[tuple[str, st.SearchStrategy[str], tuple[str, ...]]] = [
    ("--family", _bad_names(set(FAMILIES) | {"all"}), ()),
    ("--family!", NOTHING, ()),
    ("--rendering", _bad_names(set(RENDERINGS)), ()),
    ("--rendering!", NOTHING, ()),
    ("--length", st.one_of(_ints(hi=63), _ints(lo=2**31), NOT_INT), ()),
    ("--episodes", st.one_of(_ints(hi=0), NOT_INT), ()),
    ("--shard-size", st.one_of(_ints(hi=0), NOT_INT), ()),
    ("--workers", st.one_of(_ints(hi=0), NOT_INT), ()),
    ("--seed", NOT_INT, ()),
    ("--engine", TEXT.filter(lambda s: s not in ("local", "ray")), ()),
    ("--address", TEXT, ()),  # without --engine ray
    ("--split", TEXT.filter(lambda s: not re.fullmatch(r"[A-Za-z0-9_]+", s)), ()),
    ("--depth", TEXT.filter(_bad_depth), ()),
    ("--distractor-kinds", TEXT.filter(lambda s: any(x not in DISTRACTOR_KINDS for x in _csv(s))), ()),
    ("--max-version", st.one_of(_ints(hi=0), NOT_INT), ()),
    ("--keys", st.one_of(_ints(hi=0), _ints(lo=10**6), NOT_INT), ()),
    ("--queries", st.one_of(_ints(hi=0), NOT_INT), ()),
    ("--overwrites", _ints(hi=-1), ()),
    ("--distractors", _ints(hi=-1), ()),
    ("--deletes", st.one_of(_ints(hi=-1), _ints(lo=10**5)), ()),
    ("--absent-keys", _ints(hi=-1), ()),
    ("--silent-share", st.one_of(OUT_OF_UNIT, NOT_FLOAT), ()),
    ("--rewrite-share", st.one_of(OUT_OF_UNIT, NOT_FLOAT), ()),
    ("--query-position", TEXT.filter(lambda s: s not in ("end", "interleaved")), ()),
    ("--spacing", TEXT.filter(lambda s: s not in ("uniform", "powerlaw")), ()),
    ("--alpha", st.one_of(NOT_POSITIVE, NOT_FLOAT), ("--spacing", "powerlaw")),
    ("--chunk-size", st.one_of(_ints(hi=0), st.sampled_from(["100", "3", "1000"])), ("--rendering", "chunk")),
    ("--layout-chunk", _ints(hi=0), ()),
    ("--segments", st.one_of(_ints(hi=0), st.sampled_from(["3", "5", "7"])), ("--rendering", "bridge")),
    ("--vocab-size", _ints(hi=1000), ()),
    ("--key-tokens", _ints(hi=1), ()),
    ("--key-length", _ints(hi=0), ()),
    ("--values", _ints(hi=1), ()),
    ("--domain", TEXT.filter(lambda s: s.strip() not in ("accounts", "inventory", "lab_notebook",
                                                          "server_config", "travel", "")),
     ("--rendering", "text")),
    ("--tokenizer", TEXT.map(lambda s: f"/nonexistent/{s}"), ("--rendering", "text")),
]

#: what the output path is; every one of them must be refused or left alone
OUT_KINDS = ("new", "new", "new", "is a file", "under a file", "foreign folder", "another dataset",
             "unknown url", "memory url with workers")


def _without(args: list[str], flag: str) -> list[str]:
    """``args`` less every ``flag VALUE`` pair."""
    out, skip = [], False
    for a in args:
        if skip:
            skip = False
        elif a == flag:
            skip = True
        else:
            out.append(a)
    return out


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _snapshot(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "dir"
            for p in sorted(root.rglob("*"))}


def _check(result, key: str, verify: bool = False) -> None:
    """The contract for one bad case (in-process run)."""
    err = result.stderr
    assert result.exit_code not in (0, None), f"accepted bad input: {key}\n{result.output}"
    assert result.exception is None or isinstance(result.exception, SystemExit), \
        f"{key}: {type(result.exception).__name__}: {result.exception}"
    assert "Traceback" not in err and "Traceback" not in result.stdout, f"{key}\n{err}"
    lines = [x for x in err.splitlines() if x.strip()]
    errors = [x for x in lines if x.startswith("memgen: error: ")]
    assert len(errors) == 1, f"{key}: {err!r}"
    others = [x for x in lines if not x.startswith("memgen: error: ")]
    assert all(verify and x.startswith("memgen: bad: ") for x in others), f"{key}: {err!r}"


def _record(test: str, key: str, tmp: Path) -> None:
    CASES.setdefault(test, set()).add(key.replace(str(tmp), "TMP"))


@pytest.fixture(scope="module")
def pristine(tmp_path_factory) -> Path:
    """A small dataset: two configs of two shards (token and chunk at 1,024 tokens)."""
    root = tmp_path_factory.mktemp("fuzz") / "ds"
    generate(Request(families=("overwrite",), renderings=("token", "chunk"), lengths=(1024,), episodes=4,
                     seed=2, shard_size=2), root)
    return root


@pytest.fixture(scope="module", autouse=True)
def report_cases():
    yield
    total = sum(len(v) for v in CASES.values())
    sys.stdout.write(f"\nfuzzed bad input: {total} distinct cases "
                     f"({', '.join(f'{k}: {len(v)}' for k, v in sorted(CASES.items()))})\n")


# -- bad arguments to generate -----------------------------------------------------------------


@settings(max_examples=400, **SETTINGS)
@given(data=st.data())
def test_bad_generate_arguments_are_refused_and_touch_nothing(pristine, data):
    picks = data.draw(st.lists(st.sampled_from(range(len(GENERATE_MUTATIONS))), min_size=1, max_size=3,
                               unique=True), label="mutations")
    out_kind = data.draw(st.sampled_from(OUT_KINDS), label="out")
    drop = data.draw(st.sampled_from([None, None, None, None, "--out", "--family"]), label="drop")
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        out = str(tmp / "out")
        if out_kind == "is a file":
            (tmp / "out").write_text("not a folder")
        elif out_kind == "under a file":
            (tmp / "file").write_text("x")
            out = str(tmp / "file" / "out")
        elif out_kind == "foreign folder":
            (tmp / "out").mkdir()
            (tmp / "out" / "notes.txt").write_text("mine")
        elif out_kind == "another dataset":
            shutil.copytree(pristine, tmp / "out")
        elif out_kind == "unknown url":
            out = "nosuchfs://bucket/out"
        args = ["generate", "--family", "write", "--length", "1024", "--episodes", "2", "--quiet"]
        if out_kind == "memory url with workers":
            out = "memory://fuzz/out"
            args += ["--workers", "2"]
        for extra in data.draw(st.lists(st.sampled_from([("--seed", "7"), ("--rendering", "token"),
                                                         ("--length", "2048"), ("--quiet",)]), max_size=2),
                               label="noise"):  # valid flags; before the mutations, which win
            args += extra
        for i in picks:
            flag, values, needs = GENERATE_MUTATIONS[i]
            value = data.draw(values, label=flag)
            if flag == "--address" and data.draw(st.booleans(), label="ray address"):
                args += ["--engine", "ray"]
                value = f"127.0.0.1:{_closed_port()}"  # nothing listens there: refused, nothing written
            if flag.endswith("!"):
                flag = flag[:-1]
                args = _without(args, flag)
            args += [*needs, f"{flag}={value}"]
        if data.draw(st.booleans(), label="unknown option"):
            args.append("--" + data.draw(st.from_regex(r"[a-z]{3,10}", fullmatch=True).filter(
                lambda s: f"--{s}" not in OPTION_NAMES), label="option"))
        if drop != "--out":
            args += ["--out", out]
        if drop == "--family":
            args = [a for a in args if a not in ("--family", "write")]
        before = _snapshot(tmp)
        key = json.dumps([args, out_kind])
        result = CliRunner().invoke(main, args)
        _check(result, key)
        assert _snapshot(tmp) == before, f"{key}: files changed"
        if out.startswith("memory://"):
            import fsspec

            assert not fsspec.filesystem("memory").exists("/fuzz/out")
        _record("generate arguments", key, tmp)


# -- bad dataset folders for verify, show, eval and score ---------------------------------------


def _shard_paths(root: Path) -> list[Path]:
    """Shards in manifest order: the first is the one ``memgen show`` reads by default."""
    m = json.loads((root / "manifest.json").read_text())
    return [root / s["path"] for c in m["configs"].values() for s in c["shards"]]


def _set(obj, path, value):
    for k in path[:-1]:
        obj = obj[k]
    obj[path[-1]] = value


WRONG = st.sampled_from([5, -1, 1.5, "x", None, [], {}, True])
MANIFEST_FIELDS = [("configs",), ("configs", 0), ("configs", 0, "shards"), ("configs", 0, "shards", 0),
                   ("configs", 0, "shards", 0, "path"), ("configs", 0, "shards", 0, "rows"),
                   ("configs", 0, "shards", 0, "sha256"), ("configs", 0, "shards", 0, "bytes"),
                   ("configs", 0, "rendering"), ("status",)]
BAD_PATHS = ["../../../etc/passwd", "/etc/passwd", "data/../manifest.json", "data", ""]
BROKEN_YAML = ["@", "`", "\t", "%", "configs: [", "- : -\n  x: [", "? ]"]


@st.composite
def folder_damage(draw, command: str):
    """(what, apply(root)) for a change that ``command`` must refuse."""
    reads_everything = command != "show"  # eval and score verify the whole folder first
    kinds = ["flip", "truncate", "delete shard", "manifest bytes", "manifest truncated", "manifest type",
             "not a folder", "empty folder"]
    if reads_everything:
        kinds += ["extra file", "card yaml", "delete card", "stray temporary"]
    kind = draw(st.sampled_from(kinds), label="damage")
    pick = draw(st.integers(0, 3), label="shard") if reads_everything else 0
    frac = draw(st.floats(0.0, 0.999), label="where")
    if kind == "flip":
        mask = draw(st.integers(1, 255), label="mask")

        def apply(root):
            p = _shard_paths(root)[pick]
            b = bytearray(p.read_bytes())
            b[int(frac * len(b))] ^= mask
            p.write_bytes(bytes(b))
        return (kind, pick, frac, mask), apply
    if kind == "truncate":
        def apply(root):
            p = _shard_paths(root)[pick]
            b = p.read_bytes()
            p.write_bytes(b[:int(frac * len(b))])
        return (kind, pick, frac), apply
    if kind == "delete shard":
        return (kind, pick), lambda root: _shard_paths(root)[pick].unlink()
    if kind == "manifest bytes":
        junk = draw(st.binary(max_size=64), label="bytes")
        return (kind, junk.hex()), lambda root: (root / "manifest.json").write_bytes(junk)
    if kind == "manifest truncated":
        def apply(root):
            m = root / "manifest.json"
            b = m.read_bytes()
            m.write_bytes(b[:int(frac * (len(b) - 1))])
        return (kind, frac), apply
    if kind == "manifest type":
        fields = MANIFEST_FIELDS + ([("vocab",)] if command != "verify" else [])
        if command == "show":  # show reads one shard: it checks that shard, not every count
            fields = [f for f in fields if f[-1] not in ("rows", "bytes")]
        field = draw(st.sampled_from(fields), label="field")
        value = draw(st.sampled_from(BAD_PATHS) if field[-1] == "path" and draw(st.booleans()) else WRONG,
                     label="value")
        if field[-1] == "status" and value == "complete":
            value = "incomplete"

        def apply(root):
            m = json.loads((root / "manifest.json").read_text())
            path = [(list(m["configs"])[0] if k == 0 and i == 1 else k) for i, k in enumerate(field)]
            _set(m, path, value)
            (root / "manifest.json").write_text(json.dumps(m))
        return (kind, field, repr(value)), apply
    if kind == "not a folder":
        def apply(root):
            shutil.rmtree(root)
            root.write_text("a file")
        return (kind,), apply
    if kind == "empty folder":
        def apply(root):
            shutil.rmtree(root)
            root.mkdir()
        return (kind,), apply
    if kind == "extra file":
        name = draw(st.from_regex(r"[a-z0-9_.-]{1,12}", fullmatch=True), label="name")
        blob = draw(st.binary(max_size=32), label="blob")

        def apply(root):
            folder = _shard_paths(root)[pick].parent
            (folder / f"x{name}").write_bytes(blob)
        return (kind, pick, name, blob.hex()), apply
    if kind == "stray temporary":
        return (kind,), lambda root: (root / "data" / ".a.arrow.tmp-1").write_bytes(b"half")
    if kind == "delete card":
        return (kind,), lambda root: (root / "README.md").unlink()
    # card yaml: a token no YAML scanner accepts, at the start of a top-level line of the front matter
    token = draw(st.sampled_from(BROKEN_YAML), label="yaml")
    tail = draw(TEXT, label="tail")

    def apply(root):
        card = root / "README.md"
        lines = card.read_text().split("\n")
        end = lines.index("---", 1)
        tops = [i for i in range(1, end) if lines[i] and not lines[i][0].isspace()]
        at = tops[int(frac * len(tops))]
        lines.insert(at, token + tail.replace("\n", " ").replace("\r", " "))
        card.write_text("\n".join(lines))
    return (kind, token, tail, frac), apply


def _command_args(command: str, root: Path, preds: Path) -> list[str]:
    if command == "verify":
        return ["verify", str(root)]
    if command == "show":
        return ["show", str(root)]
    if command == "eval":
        return ["eval", "--dataset", str(root), "--model", "oracle", "--quiet"]
    return ["score", "--dataset", str(root), "--predictions", str(preds)]


def _oracle_predictions(root: Path) -> list[dict]:
    from memgen.io.dataset import Dataset

    ds = Dataset.open(root)
    rows = []
    for name in ds.configs:
        for r in ds.table(name).select(["id", "queries"]).to_pylist():
            rows += [{"id": r["id"], "qid": q["qid"], "prediction": q["answer"]} for q in r["queries"]]
    return rows


class _Rows(list):
    def __repr__(self) -> str:  # hypothesis prints fixtures with a failing case
        return f"<{len(self)} oracle predictions>"


@pytest.fixture(scope="module")
def good_predictions(pristine) -> list[dict]:
    return _Rows(_oracle_predictions(pristine))


@settings(max_examples=320, **SETTINGS)
@given(data=st.data())
def test_damaged_folders_are_refused_and_left_as_they_are(pristine, good_predictions, data):
    command = data.draw(st.sampled_from(["verify", "verify", "show", "eval", "score"]), label="command")
    what, apply = data.draw(folder_damage(command), label="damage")
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        root = tmp / "ds"
        shutil.copytree(pristine, root)
        preds = tmp / "p.jsonl"
        preds.write_text("".join(json.dumps(r) + "\n" for r in good_predictions))
        apply(root)
        before = _snapshot(tmp)
        key = json.dumps([command, what], default=str)
        result = CliRunner().invoke(main, _command_args(command, root, preds))
        _check(result, key, verify=command == "verify")
        assert _snapshot(tmp) == before, f"{key}: files changed"
        _record(f"{command} folder", key, tmp)


# -- bad predictions for score -----------------------------------------------------------------


def _valid_json(s: str) -> bool:
    try:
        json.loads(s)
    except ValueError:
        return False
    return True


@st.composite
def bad_predictions(draw, good: list[dict]):
    """(what, file name, bytes) of a predictions file that ``memgen score`` must refuse."""
    kind = draw(st.sampled_from(["random bytes", "truncated", "wrong type", "unknown id", "unknown qid",
                                 "duplicate", "not an object"]), label="kind")
    lines = [json.dumps(r) for r in good]
    if kind == "random bytes":
        name = draw(st.sampled_from(["p.jsonl", "p.arrow", "p.parquet", "p.jsonl.gz"]), label="name")
        blob = draw(st.binary(max_size=200), label="blob")
        return (kind, name, blob.hex()), name, blob
    if kind == "truncated":
        text = "\n".join(lines) + "\n"
        cut = draw(st.integers(1, len(text) - 2), label="cut")
        last = text[:cut].rsplit("\n", 1)[-1]
        if not last or _valid_json(last):  # cut at a line end: a shorter, well-formed file
            cut += 1 + next(i for i, c in enumerate(text[cut + 1:]) if c != "\n")
        return (kind, cut), "p.jsonl", text[:cut].encode()
    i = draw(st.integers(0, len(good) - 1), label="row")
    row = dict(good[i])
    if kind == "wrong type":
        # (a prediction of another type is an unreadable answer, scored 'unparsed': not a bad file)
        field = draw(st.sampled_from(["id", "qid"]), label="field")
        wrong = {"id": [5, None, [], {}, 1.5, True],
                 "qid": ["a", "1", 1.5, None, [], {}, True, 2**63, -(2**63) - 1]}[field]
        row[field] = draw(st.sampled_from(wrong), label="value")
        what = (kind, i, field, repr(row[field]))
    elif kind == "unknown id":
        ids = {r["id"] for r in good}
        row["id"] = draw(TEXT.filter(lambda s: s not in ids), label="id")
        what = (kind, i, row["id"])
    elif kind == "unknown qid":
        row["qid"] = draw(st.one_of(st.integers(max_value=-1), st.integers(min_value=10_000)), label="qid")
        what = (kind, i, row["qid"])
    elif kind == "duplicate":
        lines.append(json.dumps(row))
        return (kind, i), "p.jsonl", ("\n".join(lines) + "\n").encode()
    else:
        row = draw(st.sampled_from([[], "x", 5, None, [row]]), label="row value")
        what = (kind, i, repr(row))
    lines[i] = json.dumps(row)
    return what, "p.jsonl", ("\n".join(lines) + "\n").encode()


@settings(max_examples=200, **SETTINGS)
@given(data=st.data())
def test_bad_predictions_are_refused_and_write_no_report(pristine, good_predictions, data):
    what, name, blob = data.draw(bad_predictions(good_predictions), label="predictions")
    with_out = data.draw(st.booleans(), label="--out")
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        preds = tmp / name
        preds.write_bytes(blob)
        args = ["score", "--dataset", str(pristine), "--predictions", str(preds)]
        if with_out:
            args += ["--out", str(tmp / "report")]
        before, dataset_before = _snapshot(tmp), _snapshot(pristine)
        key = json.dumps([what, name, with_out], default=str)
        result = CliRunner().invoke(main, args)
        _check(result, key)
        assert _snapshot(tmp) == before and _snapshot(pristine) == dataset_before, f"{key}: files changed"
        _record("score predictions", key, tmp)


# -- a sample through a real process -----------------------------------------------------------


SAMPLE = [
    ["generate", "--family", "write,bogus", "--out", "{tmp}/o"],
    ["generate", "--family", "all,", "--length", "63", "--out", "{tmp}/o"],
    ["generate", "--family", "write", "--engine", "spark", "--out", "{tmp}/o"],
    ["generate", "--family", "write", "--workers", "0", "--out", "{tmp}/o"],
    ["generate", "--family", "write", "--address", "127.0.0.1:1", "--out", "{tmp}/o"],
    ["generate", "--family", "write", "--split", "a b\nc", "--out", "{tmp}/o"],
    ["generate", "--family", "write", "--rendering", "chunk", "--chunk-size", "100", "--out", "{tmp}/o"],
    ["generate", "--family", "write", "--out", "nosuchfs://b/o"],
    ["verify", "{tmp}/o"],
    ["show", "{tmp}"],
    ["score", "--dataset", "{tmp}", "--predictions", "{tmp}/none.jsonl"],
]


@pytest.mark.parametrize("args", SAMPLE, ids=lambda a: " ".join(a[:4]))
def test_a_sample_in_a_real_process(tmp_path, args):
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    p = subprocess.run([sys.executable, "-m", "memgen.cli", *args], capture_output=True, text=True, timeout=120)
    assert p.returncode in (1, 2), p.stderr
    lines = [x for x in p.stderr.splitlines() if x.strip()]
    assert len(lines) == 1 and lines[0].startswith("memgen: error: "), p.stderr
    assert not (tmp_path / "o").exists()
