"""A readable view of one episode (``memgen show``): for the text rendering, each event's sentence
(its character span of ``context``) and each question as asked; for the token renderings, the
ids and token spans."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table
from rich.text import Text

OP_STYLE = {"write": "green", "overwrite": "yellow", "silent_write": "cyan", "delete": "red",
            "distractor": "magenta"}


def _traps(t: dict) -> str:
    """Short lists in full; the other keys' values (one per key) as a count."""
    parts = [f"{name} {vals}" for name, vals in t.items() if vals and name != "other_keys"]
    if t.get("other_keys"):
        parts.append(f"{len(t['other_keys'])} other keys")
    return "; ".join(parts)


def _text_traps(t: dict, where: dict[int, int]) -> str:
    """Trap values as the events that stated them (``stale #3, #5``); the other keys' as a count."""
    parts = [f"{name} " + ", ".join(f"#{where[v]}" if v in where else str(v) for v in vals)
             for name, vals in t.items() if vals and name != "other_keys"]
    if t.get("other_keys"):
        parts.append(f"{len(t['other_keys'])} other keys")
    return "; ".join(parts)


def _sentence(context: str, start: int, end: int) -> str:
    """The text at ``[start, end)`` of ``context`` (one line; empty for a span outside it)."""
    if not 0 <= start <= end <= len(context):
        return ""
    return " ".join(context[start:end].split())


def render_text_episode(console: Console, row: dict) -> None:
    """A text episode: every event's sentence in reading order, then every question as the
    prompt asks it, with its gold answer, probe and traps (as the events that stated them)."""
    context = row["context"]
    events = Table(title=f"events ({len(row['events'])}), in reading order", title_justify="left")
    for col in ("#", "op", "version", "kind", "sentence", "at char"):
        events.add_column(col, justify="right" if col in ("#", "version", "at char") else "left",
                          no_wrap=col != "sentence", ratio=1 if col == "sentence" else None)
    where: dict[int, int] = {}  # value id -> the event that stated it (a value names one event)
    for i, e in enumerate(row["events"]):
        if e["value"] >= 0:
            where.setdefault(e["value"], i)
        events.add_row(str(i), Text(e["op"], OP_STYLE.get(e["op"], "")), str(e["version"]), e["kind"],
                       Text(_sentence(context, e["start"], e["end"])), f"{e['start']:,}")
    console.print(events)
    questions = row.get("questions") or []
    queries = Table(title=f"questions ({len(row['queries'])})", title_justify="left")
    for col in ("#", "question", "answer", "probe", "ask", "traps"):
        queries.add_column(col, justify="right" if col == "#" else "left",
                           ratio=1 if col in ("question", "traps") else None)
    for n, q in enumerate(row["queries"]):
        asked = questions[n] if n < len(questions) else ""
        if q["start"] >= 0:  # an interleaved question: asked inside the log, where it stands
            asked += f" (in the log at char {q['start']:,})"
        ask = q["ask"] + (f" k={q['version']}" if q["ask"] == "version" else "")
        queries.add_row(str(n + 1), Text(asked), Text(q["answer_text"]), q["probe"], ask,
                        _text_traps(q["traps"], where))
    console.print(queries)
    console.print(Text(f"context: {len(context):,} characters, {row['length']:,} tokens "
                       f"({row.get('tokenizer', '')}); domain {row.get('domain', '')}", "dim"))


def render_episode(console: Console, row: dict, vocab: dict | None, show_tokens: bool = False) -> None:
    if row["rendering"] == "text" and "context" in row:
        console.print(Text.assemble(
            (row["id"], "bold"), f"   family {row['family']}   rendering text   "
            f"length {row['length']:,}/{row['target_length']:,}   seed {row['seed']}"))
        render_text_episode(console, row)
        return
    console.print(Text.assemble(
        (row["id"], "bold"), f"   family {row['family']}   rendering {row['rendering']}   "
        f"length {row['length']:,}/{row['target_length']:,}   seed {row['seed']}"))
    where = "chars" if row["rendering"] == "text" else "tokens"
    events = Table(title=f"events ({len(row['events'])})", title_justify="left")
    for col in ("#", "op", "key", "value", "version", "kind", f"span ({where})", "chunk", "segment"):
        events.add_column(col, justify="right" if col not in ("op", "kind") else "left",
                          no_wrap=not col.startswith("span"))
    ids = row.get("input_ids")
    for i, e in enumerate(row["events"]):
        key = f"{e['key']}" + (f" (as {e['alias']})" if e["alias"] >= 0 else "")
        span = f"{e['start']}-{e['end']}"
        if show_tokens and ids is not None:
            span += f" {ids[e['start']:e['end']]}"
        events.add_row(str(i), Text(e["op"], OP_STYLE.get(e["op"], "")), key,
                       "-" if e["value"] < 0 else str(e["value"]), str(e["version"]), e["kind"], span,
                       "" if e["chunk"] < 0 else str(e["chunk"]), "" if e["segment"] < 0 else str(e["segment"]))
    console.print(events)
    queries = Table(title=f"queries ({len(row['queries'])})", title_justify="left")
    text = row["rendering"] == "text"
    cols = ["qid", "ask", "key", "answer"] + (["answer_text"] if text else []) + ["probe", "span", "evidence",
                                                                                 "traps"]
    for col in cols:
        queries.add_column(col, no_wrap=col not in ("traps", "evidence", "answer_text"),
                           min_width=20 if col == "traps" else None)
    for q in row["queries"]:
        ask = q["ask"] + (f" k={q['version']}" if q["ask"] == "version" else "")
        cells = [str(q["qid"]), ask, str(q["key"]), "unknown" if q["answer"] < 0 else str(q["answer"])]
        cells += [q["answer_text"]] if text else []
        cells += [q["probe"], f"{q['start']}-{q['end']}", ",".join(map(str, q["evidence"])), _traps(q["traps"])]
        queries.add_row(*cells)
    console.print(queries)
    if row["rendering"] == "text" and row.get("questions"):
        console.print(Text("questions", "bold"))
        for i, qtext in enumerate(row["questions"], 1):
            console.print(f"  {i}: {qtext}")
    if vocab and ids is not None:
        console.print(Text(f"value id v is token {vocab['value_offset']} + v; the answer is read at each "
                           "query's end - 1 (the answer slot)", "dim"))
