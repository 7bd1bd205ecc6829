"""A readable view of one episode (``memgen show``)."""

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


def render_episode(console: Console, row: dict, vocab: dict | None, show_tokens: bool = False) -> None:
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
