"""Predictions in every format the scorer reads (docs/scoring.md, "Predictions").

* JSONL rows ``{"id", "qid", "prediction"}``: a token id (int) or a text answer (string);
* JSONL rows ``{"id", "answer_block"}``: one text block per episode, one numbered line per
  question ("1: ...", "2. ..."), split here into answers by line number; a row with
  ``"outcome": "overflow"`` or ``"refused"`` (and a null block) is an episode ``memgen run``
  got no answer for, and every question of it takes that outcome;
* lm-evaluation-harness ``--log_samples`` files (``samples_<task>_<date>.jsonl``), whose rows
  carry the dataset row in ``doc`` and the model's output in ``filtered_resps``/``resps``;
* a column of a table (an ``.arrow``/``.parquet`` file or a dataset folder): flat
  ``id``/``qid``/``prediction`` columns, or a list column aligned with each row's ``queries``.

Every reader returns :class:`Predictions`; addressing (which query each answer is for) is
resolved against the dataset by :func:`memgen.scorers.align.align`.
Problems with the file itself raise :class:`DataError` as ``file:line: what is wrong``.
"""

from __future__ import annotations

import hashlib
import json
import re
import zlib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.ipc as ipc
import pyarrow.json as pajson
import pyarrow.parquet as pq

from memgen.format.codes import RUN_OUTCOMES
from memgen.format.errors import DataError
from memgen.format.names import printable
from memgen.io.atomic import sha256_file
from memgen.io.shards import map_shard

#: ``tokens`` entry of a prediction that is not a JSON integer (so it is unparsed as a token)
NOT_INT = np.iinfo(np.int64).min
_INT64_MAX = np.iinfo(np.int64).max
#: a predictions file (after gzip) larger than this is refused: about 4M answers of 60 bytes
MAX_PREDICTIONS_BYTES = 256 << 20

_BLOCK_LINE = re.compile(
    r"^[\s*_>#-]*(?:q(?:uestion)?\s*)?#?(\d{1,9})[*_]*\s*(?::|\)|\.(?=[\s*_]|$)|-(?=\s))[*_]*\s*(.*?)\s*$",
    re.IGNORECASE)


@dataclass
class Predictions:
    """Answers of one model, each addressed by (``id``, ``qid``) or by (``id``, ``slot``):
    the 0-based position of the question in the episode (answer blocks; aligned columns).

    ``tokens`` holds each answer as a token id (``NOT_INT`` when it is not an integer);
    ``texts`` as a string (null when empty or null), or is ``None`` as a whole when every
    answer is an integer (its text is then its decimal form, see :meth:`texts_at`).
    ``lines`` are 1-based lines (or rows) of the source, for messages; 0 where the answer did
    not come from a file.  ``aligned``: answer ``i`` is for query ``i`` of the frame it was
    made for (no ids to join).  ``block_ids`` (with ``block_lines``) are the episodes answered
    by an answer block, empty ones included: their questions without a numbered line got an
    empty answer (``unparsed``), they are not missing."""

    name: str
    source: str
    ids: pa.Array
    qids: np.ndarray
    slots: np.ndarray
    tokens: np.ndarray
    texts: pa.Array | list[str | None] | None
    lines: np.ndarray
    notes: list[str] = field(default_factory=list)
    aligned: bool = False
    block_ids: list[str] = field(default_factory=list)
    block_lines: list[int] = field(default_factory=list)
    #: sha256 of the file the answers were read from (of a folder: see :func:`read_predictions`)
    sha256: str | None = None
    #: episodes a runner got no answer for: id -> ``overflow`` or ``refused`` (their ids are in
    #: ``block_ids`` too: every question of such an episode takes that outcome)
    run_outcomes: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.ids, pa.Array):
            self.ids = pa.array([str(i) for i in self.ids], pa.string())
        if self.texts is not None and not isinstance(self.texts, pa.Array):
            self.texts = pa.array(self.texts, pa.string())

    def __len__(self) -> int:
        return len(self.tokens)

    def id_at(self, i: int) -> str:
        return self.ids[i].as_py()

    def texts_at(self, idx: np.ndarray) -> pa.Array:
        """The text answers at positions ``idx`` (a string array, null where none)."""
        if self.texts is not None:
            return self.texts.take(pa.array(idx, pa.int64()))
        t = self.tokens[idx]
        return pc.cast(pa.array(t, pa.int64(), mask=t == NOT_INT), pa.string())

    @classmethod
    def from_records(cls, records: Iterable[Mapping], name: str = "predictions",
                     source: str = "<records>") -> Predictions:
        """From dicts with ``id``, ``qid`` and ``prediction`` (as in the JSONL format)."""
        b = _Builder(source)
        for n, rec in enumerate(records, start=1):
            b.add_row(dict(rec), n)
        return b.build(name)

    @classmethod
    def from_table(cls, table: pa.Table, name: str = "predictions", source: str = "<table>",
                   column: str | None = None) -> Predictions:
        """From a table with ``id``, ``qid`` and ``prediction`` columns, or with ``id`` and a
        list column (``column``, default ``predictions``) holding one answer per query, in the
        order of the row's ``queries``."""
        cols = table.column_names
        if "id" not in cols:
            raise DataError(f"{source}: predictions table has no 'id' column")
        ids = pc.cast(table.column("id"), pa.string()).combine_chunks()
        flat_col = column or "prediction"
        if "qid" in cols and flat_col in cols and not pa.types.is_list(table.schema.field(flat_col).type):
            qid_col = table.column("qid")
            if qid_col.null_count or not pa.types.is_integer(qid_col.type):
                raise DataError(f"{source}: the 'qid' column must hold integers, without nulls")
            tokens, texts = column_values(table.column(flat_col))
            n = table.num_rows
            return cls(name, source, ids, qid_col.to_numpy().astype(np.int64), np.full(n, -1, np.int64),
                       tokens, texts, np.arange(1, n + 1, dtype=np.int64))
        list_col = column or "predictions"
        if list_col not in cols or not pa.types.is_list(table.schema.field(list_col).type):
            raise DataError(f"{source}: no predictions column (expected 'id'/'qid'/'prediction', "
                            f"or a list column '{list_col}' aligned with 'queries')")
        lists = table.column(list_col).to_pylist()
        out_ids, slots, values, lines = [], [], [], []
        for r, (i, lst) in enumerate(zip(ids.to_pylist(), lists, strict=True), start=1):
            for s, v in enumerate(lst or ()):
                out_ids.append(i)
                slots.append(s)
                values.append(v)
                lines.append(r)
        tokens, texts = prediction_values(values)
        n = len(out_ids)
        return cls(name, source, out_ids, np.full(n, -1, np.int64), np.asarray(slots, dtype=np.int64),
                   tokens, texts, np.asarray(lines, dtype=np.int64))


def prediction_values(values: list) -> tuple[np.ndarray, list[str | None]]:
    """(token ids, texts) of raw answers: a JSON integer is a token id and its decimal text;
    a string is a text and no token (``NOT_INT``); anything else (null, float, bool) neither."""
    tokens = np.fromiter((v if type(v) is int and NOT_INT < v <= _INT64_MAX else NOT_INT for v in values),
                         dtype=np.int64, count=len(values))
    texts = [v if type(v) is str else (str(v) if type(v) is int else None) for v in values]
    return tokens, texts


def column_values(col: pa.Array | pa.ChunkedArray) -> tuple[np.ndarray, list[str | None] | None]:
    """(token ids, texts) of an Arrow column of answers, as :func:`prediction_values` reads a
    list, without a Python loop for integer columns (their texts are derived when needed)."""
    if pa.types.is_integer(col.type):
        if col.type == pa.uint64():  # ids above int64's range are no token: unparsed, not wrapped
            col = pc.if_else(pc.greater(col, pa.scalar(int(_INT64_MAX), pa.uint64())), pa.scalar(None, col.type), col)
        return pc.fill_null(pc.cast(col, pa.int64()), NOT_INT).to_numpy().astype(np.int64), None
    if pa.types.is_string(col.type) or pa.types.is_large_string(col.type) or pa.types.is_null(col.type):
        texts = col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col
        return np.full(len(col), NOT_INT, dtype=np.int64), pc.cast(texts, pa.string())
    return prediction_values(col.to_pylist())


class _Builder:
    """Collects answers row by row, with the line each came from."""

    def __init__(self, source: str):
        self.source = source
        self.ids: list[str] = []
        self.qids: list[int] = []
        self.slots: list[int] = []
        self.values: list = []
        self.lines: list[int] = []
        self.notes: list[str] = []
        self.block_duplicates = 0
        self.block_unnumbered = 0
        self.lm_filter: str | None = None
        self.lm_skipped: dict[str, int] = {}
        self.block_ids: list[str] = []
        self.block_lines: list[int] = []
        self.run_outcomes: dict[str, str] = {}
        #: rows read (answers, answer blocks and lm-eval samples, empty ones included)
        self.rows = 0

    def fail(self, line: int, what: str) -> DataError:
        return DataError(f"{self.source}:{line}: {what}")

    def _id(self, row: Mapping, line: int, where: str = "") -> str:
        i = row.get("id")
        if isinstance(i, bool) or not isinstance(i, (str, int)):
            raise self.fail(line, f"missing or non-string {where}'id'")
        if isinstance(i, str) and not _unicode(i):
            raise self.fail(line, f"{where}'id' is not valid Unicode (it holds a lone surrogate)")
        return str(i)

    def add(self, id_: str, qid: int, slot: int, value, line: int) -> None:
        if isinstance(value, str) and not _unicode(value):  # a lone surrogate cannot be stored: mark it
            value = value.encode("utf-8", "replace").decode("utf-8")
        self.ids.append(id_)
        self.qids.append(qid)
        self.slots.append(slot)
        self.values.append(value)
        self.lines.append(line)

    def add_row(self, row: Mapping, line: int) -> None:
        if not isinstance(row, Mapping):
            raise self.fail(line, "expected a JSON object")
        if "prediction" in row:
            qid = row.get("qid")
            if type(qid) is not int:
                raise self.fail(line, "missing or non-integer 'qid' (rows with 'prediction' need "
                                      "'id' and 'qid')")
            if not -(1 << 63) <= qid < 1 << 63:
                raise self.fail(line, f"'qid' {qid} is out of range")
            self.add(self._id(row, line), qid, -1, row["prediction"], line)
            self.rows += 1
        elif "answer_block" in row:
            block = row["answer_block"]
            if block is not None and not isinstance(block, str):
                raise self.fail(line, "'answer_block' must be a string")
            id_ = self._id(row, line)
            outcome = row.get("outcome")
            if outcome is not None:
                if not isinstance(outcome, str) or outcome not in RUN_OUTCOMES:
                    raise self.fail(line, f"unknown 'outcome' {printable(outcome, 40)} (a run records "
                                          f"{' or '.join(RUN_OUTCOMES)})")
                if block:
                    raise self.fail(line, f"an episode recorded as {outcome!r} has no answer_block")
                self.run_outcomes.setdefault(id_, outcome)
            self.add_block(id_, block or "", line)
            self.rows += 1
        elif "doc" in row and ("resps" in row or "filtered_resps" in row):
            self.add_lm_eval(row, line)
        else:
            raise self.fail(line, "a row needs 'id' and 'qid' with 'prediction', 'id' with "
                                  "'answer_block', or lm-eval's 'doc' with 'resps'")

    def add_block(self, id_: str, block: str, line: int) -> None:
        self.block_ids.append(id_)
        self.block_lines.append(line)
        seen: set[int] = set()
        for text_line in block.splitlines():
            m = _BLOCK_LINE.match(text_line)
            if not m:
                if text_line.strip():
                    self.block_unnumbered += 1
                continue
            number = int(m.group(1))
            if number < 1 or number in seen:
                self.block_duplicates += 1
                continue
            seen.add(number)
            self.add(id_, -1, number - 1, m.group(2), line)

    def add_lm_eval(self, row: Mapping, line: int) -> None:
        flt = row.get("filter")
        if isinstance(flt, str):
            if self.lm_filter is None:
                self.lm_filter = flt
            if flt != self.lm_filter:
                self.lm_skipped[flt] = self.lm_skipped.get(flt, 0) + 1
                return
        doc = row.get("doc")
        if not isinstance(doc, Mapping):
            raise self.fail(line, "lm-eval sample without a 'doc' object")
        id_ = self._id(doc, line, "doc.")
        resp = row.get("filtered_resps")
        if resp is None:
            resp = row.get("resps")
        while isinstance(resp, list):
            resp = resp[0] if resp else None
        text = resp if isinstance(resp, str) else None
        self.rows += 1
        qid = doc.get("qid")
        if qid is None:  # the whole episode was the prompt: the response is an answer block
            self.add_block(id_, text or "", line)
        elif type(qid) is int:
            self.add(id_, qid, -1, text, line)
        else:
            raise self.fail(line, "non-integer doc.qid")

    def build(self, name: str) -> Predictions:
        if self.block_unnumbered:
            self.notes.append(f"{self.block_unnumbered} answer-block lines carry no question "
                              "number and were ignored")
        if self.block_duplicates:
            self.notes.append(f"{self.block_duplicates} answer-block lines repeat a question number "
                              "(the first answer is scored)")
        if self.lm_skipped:
            skipped = ", ".join(f"{k} ({v} rows)" for k, v in sorted(self.lm_skipped.items()))
            self.notes.append(f"lm-eval filter {self.lm_filter!r} scored; skipped {skipped}")
        tokens, texts = prediction_values(self.values)
        return Predictions(name, self.source, self.ids, np.asarray(self.qids, dtype=np.int64),
                           np.asarray(self.slots, dtype=np.int64), tokens, texts,
                           np.asarray(self.lines, dtype=np.int64), self.notes,
                           block_ids=self.block_ids, block_lines=self.block_lines, run_outcomes=self.run_outcomes)


# ---------------------------------------------------------------------------------------------
# files


def read_predictions(path: str | Path, name: str | None = None, column: str | None = None,
                     lm_eval_filter: str | None = None) -> Predictions:
    """Read the predictions file (or table, or dataset folder) at ``path``.

    JSONL files (optionally ``.gz``) may mix the three row kinds; ``lm_eval_filter`` picks the
    lm-eval filter to score where a log holds several (default: the first one in the file).
    Raises :class:`DataError` ``file:line: ...`` for malformed JSON, a truncated last line, a
    row of no known kind, or a file without any row (a file whose answers are all empty is
    read: they score ``unparsed``)."""
    p = Path(path)
    label = name or _default_name(p)
    if p.is_dir() or p.suffix in (".arrow", ".parquet", ".feather"):
        preds = Predictions.from_table(_read_table(p), name=label, source=str(p), column=column)
        preds.sha256 = _folder_sha256(p) if p.is_dir() else sha256_file(p)
        return preds
    if not p.is_file():
        raise DataError(f"{p}: no such predictions file")
    raw, digest = _read_bytes(p)
    fast = None if lm_eval_filter else _read_flat_jsonl(raw, label, str(p))
    if fast is not None:
        fast.sha256 = digest
        return fast
    b = _Builder(str(p))
    b.lm_filter = lm_eval_filter
    for n, row in _json_lines(raw, str(p)):
        b.add_row(row, n)
    if not b.rows:
        if b.lm_skipped:
            raise DataError(f"{p}: no rows of lm-eval filter {b.lm_filter!r} (the file has "
                            f"{', '.join(sorted(b.lm_skipped))})")
        raise DataError(f"{p}: no predictions in the file")
    preds = b.build(label)
    preds.sha256 = digest
    return preds


def _folder_sha256(root: Path) -> str:
    """The digest of a predictions folder: sha256 over its shards' ``<relative path> <sha256>``
    lines, sorted by path (what a reader needs to tell two folders apart)."""
    files = sorted((root / "data").glob("*/*.arrow")) + sorted((root / "data").glob("*/*.parquet"))
    lines = sorted(f"{f.relative_to(root).as_posix()} {sha256_file(f)}\n" for f in files)
    return hashlib.sha256("".join(lines).encode()).hexdigest()


def _unicode(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _read_bytes(p: Path) -> tuple[bytes, str]:
    """The file's bytes (gunzipped for ``.gz``), at most :data:`MAX_PREDICTIONS_BYTES` of them,
    and the sha256 of the file as stored: a larger file, or a gzip bomb, is refused before it
    fills memory."""
    too_big = DataError(f"{p}: more than {MAX_PREDICTIONS_BYTES >> 20} MiB of predictions; split the file")
    try:
        if p.stat().st_size > MAX_PREDICTIONS_BYTES:
            raise too_big
        data = p.read_bytes()
        digest = hashlib.sha256(data).hexdigest()
        if p.suffix != ".gz":
            return data, digest
        inflate = zlib.decompressobj(16 + zlib.MAX_WBITS)
        out = inflate.decompress(data, MAX_PREDICTIONS_BYTES + 1)
        if len(out) > MAX_PREDICTIONS_BYTES or inflate.unconsumed_tail:
            raise too_big
        if not inflate.eof:
            raise DataError(f"{p}: truncated gzip file")
        return out, digest
    except (OSError, zlib.error) as e:
        raise DataError(f"{p}: cannot be read ({e})") from None


def _default_name(p: Path) -> str:
    name = p.name
    for suffix in (".gz", ".jsonl", ".json", ".arrow", ".parquet", ".feather"):
        name = name.removesuffix(suffix)
    return name or str(p)


def _json_lines(raw: bytes, source: str) -> Iterator[tuple[int, object]]:
    lines = raw.split(b"\n")
    complete = raw.endswith(b"\n")
    last = len(lines) - 1
    for i, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            yield i + 1, json.loads(line)
        except RecursionError:
            raise DataError(f"{source}:{i + 1}: nested too deeply for a predictions row") from None
        except ValueError as e:  # JSONDecodeError, UnicodeDecodeError, an integer of too many digits
            if i == last and not complete and isinstance(e, json.JSONDecodeError):
                raise DataError(f"{source}:{i + 1}: truncated file (the last line is incomplete JSON)") \
                    from None
            msg = e.msg if isinstance(e, json.JSONDecodeError) else "not UTF-8" \
                if isinstance(e, UnicodeDecodeError) else str(e)[:80]
            raise DataError(f"{source}:{i + 1}: malformed JSON ({msg})") from None


def _read_flat_jsonl(raw: bytes, name: str, source: str) -> Predictions | None:
    """Arrow's JSON reader for the common case (every row has id, qid and a non-null
    prediction; extra fields are ignored; no blank lines), so a million-row file parses in
    C++.  None sends the file to the line-by-line reader, which also gives the exact line of
    any problem."""
    if not raw or not raw.endswith(b"\n") or b"\n\n" in raw or raw.startswith(b"\n"):
        return None
    # one flat object a line, nothing nested: Arrow's reader crashes the process on deep nesting
    if b"[" in raw or raw.count(b"{") != raw.count(b"\n"):
        return None
    try:
        table = pajson.read_json(pa.BufferReader(raw))
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None
    cols = set(table.column_names)
    if not {"id", "qid", "prediction"} <= cols or {"answer_block", "doc"} & cols:
        return None  # other row kinds (or rows without a prediction key) are read line by line
    if table.num_rows != raw.count(b"\n") or table.column("prediction").null_count:
        return None
    if not pa.types.is_integer(table.schema.field("qid").type) or table.column("qid").null_count:
        return None
    id_type = table.schema.field("id").type
    if not (pa.types.is_string(id_type) or pa.types.is_integer(id_type)) or table.column("id").null_count:
        return None
    n = table.num_rows
    ids = pc.cast(table.column("id"), pa.string()).combine_chunks()
    qids = table.column("qid").to_numpy().astype(np.int64)
    pred = table.column("prediction")
    ptype = pred.type
    if not (pa.types.is_integer(ptype) or pa.types.is_string(ptype) or pa.types.is_null(ptype)):
        return None  # floats, booleans, lists: let the line reader decide each row
    tokens, texts = column_values(pred)
    return Predictions(name, source, ids, qids, np.full(n, -1, np.int64), tokens, texts,
                       np.arange(1, n + 1, dtype=np.int64))


def _read_table(p: Path) -> pa.Table:
    try:
        if p.is_dir():
            files = sorted((p / "data").glob("*/*.arrow")) + sorted((p / "data").glob("*/*.parquet"))
            if not files:
                raise DataError(f"{p}: no data/<config>/*.arrow or *.parquet shards with predictions")
            return pa.concat_tables([_read_table(f) for f in files], promote_options="permissive")
        if p.suffix == ".parquet":
            return pq.read_table(p)
        with map_shard(p) as source:
            try:
                return ipc.open_file(source).read_all()
            except pa.ArrowInvalid:
                source.seek(0)
                return ipc.open_stream(source).read_all()
    except (pa.ArrowInvalid, pa.ArrowIOError, OSError) as e:
        raise DataError(f"{p}: not a readable Arrow/Parquet file ({e})") from None
