"""A plain-Python restatement of DESIGN.md section 3, used only to check ``memgen.ir.replay``.

It walks events and queries one by one, the obvious way; the library's interpreter is
vectorised.  The two must agree on every answer, version, op, probe and trap."""

from __future__ import annotations

from memgen.format.codes import ABSENT
from memgen.ir.episode import Episode


def naive_replay(ep: Episode) -> dict:
    current: dict[int, int] = {}
    history: dict[int, list[int]] = {}
    deleted_vals: dict[int, list[int]] = {}
    distractor_vals: dict[int, list[int]] = {}
    silent_cur: dict[int, bool] = {}
    ops, versions, answers, probes, traps = [], [], [], [], []
    by_after: dict[int, list] = {}
    for q in ep.queries:
        by_after.setdefault(q.after, []).append(q)

    def ask(q):
        k = q.key
        hist = history.get(k, [])
        has = k in current
        if not has:
            gold = ABSENT
        elif q.ask == "latest":
            gold = current[k]
        elif q.ask == "version":
            gold = hist[q.version - 1] if 1 <= q.version <= len(hist) else ABSENT
        else:
            gold = hist[-2] if len(hist) >= 2 else ABSENT
        if q.ask != "latest":
            probe = "version"
        elif k in deleted_vals:
            probe = "discard"
        elif k in distractor_vals:
            probe = "distractor"
        elif has and silent_cur[k]:
            probe = "no_write_signal"
        elif len(hist) >= 2:
            probe = "overwrite"
        else:
            probe = "write"
        t = {
            "stale": {v for v in hist if v != gold},
            "distractor": {v for v in distractor_vals.get(k, []) if v != gold},
            "other_keys": {v for kk, v in current.items() if kk != k and v != gold},
            "deleted": {v for v in deleted_vals.get(k, []) if v != gold},
        }
        answers.append(gold)
        probes.append(probe)
        traps.append(t)

    for q in by_after.get(-1, []):
        ask(q)
    for i, e in enumerate(ep.events):
        if e.op in ("write", "overwrite", "silent_write"):
            op = "silent_write" if not e.signal else ("overwrite" if e.key in current else "write")
            current[e.key] = e.value
            history.setdefault(e.key, []).append(e.value)
            silent_cur[e.key] = not e.signal
            ops.append(op)
            versions.append(len(history[e.key]))
        elif e.op == "delete":
            if e.key in current:
                del current[e.key]
            deleted_vals.setdefault(e.key, []).extend(v for v in history.get(e.key, []))
            ops.append("delete")
            versions.append(0)
        else:
            distractor_vals.setdefault(e.key, []).append(e.value)
            ops.append("distractor")
            versions.append(0)
        for q in by_after.get(i, []):
            ask(q)
    return {"ops": ops, "versions": versions, "answers": answers, "probes": probes, "traps": traps}
