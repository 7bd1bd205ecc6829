"""A readable view of one episode (``memgen show``)."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table
from rich.text import Text

OP_STYLE = {"write": "green", "overwrite": "yellow", "silent_write": "cyan", "delete": "red",
            "distractor": "magenta"}


def _traps(t: dict) -> str:
    parts = [f"{name}={vals}" for name, vals in t.items() if vals]
    s = "  ".join(parts)
    return s if len(s) < 90 else s[:87] + "..."


def render_episode(console: Console, row: dict, vocab: dict | None, show_tokens: bool = False) -> None:
    console.print(Text.assemble(
        (row["id"], "bold"), f"   family {row['family']}   rendering {row['rendering']}   "
        f"length {row['length']:,}/{row['target_length']:,}   seed {row['seed']}"))
    where = "chars" if row["rendering"] == "text" else "tokens"
    events = Table(title=f"events ({len(row['events'])})", title_justify="left")
    for col in ("#", "op", "key", "value", "version", "kind", f"span ({where})", "chunk", "segment"):
        events.add_column(col, justify="right" if col not in ("op", "kind") else "left",
                          no_wrap=col in ("op", "kind", "key"))
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
    for col in ("qid", "ask", "key", "answer", "answer_text", "probe", "span", "evidence", "traps"):
        queries.add_column(col, no_wrap=col in ("ask", "probe"))
    for q in row["queries"]:
        ask = q["ask"] + (f" k={q['version']}" if q["ask"] == "version" else "")
        queries.add_row(str(q["qid"]), ask, str(q["key"]), "absent" if q["answer"] < 0 else str(q["answer"]),
                        q["answer_text"], q["probe"], f"{q['start']}-{q['end']}",
                        ",".join(map(str, q["evidence"])), _traps(q["traps"]))
    console.print(queries)
    if row["rendering"] == "text" and row.get("questions"):
        console.print(Text("questions", "bold"))
        for i, qtext in enumerate(row["questions"], 1):
            console.print(f"  {i}: {qtext}")
    if vocab and ids is not None:
        console.print(Text(f"value id v is token {vocab['value_offset']} + v; the answer is read at each "
                           "query's end - 1 (the answer slot)", "dim"))
