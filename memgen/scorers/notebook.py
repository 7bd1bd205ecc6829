"""The notebook rendering of a report (``Report._repr_html_``, ``ScoreResult._repr_html_``).

One self-contained HTML fragment, no scripts and no external files: the provenance line, then
per model a table of accuracy by probe (strict and lenient, with 95% intervals clustered by
episode) whose last column draws the probe's outcome mix as a stacked bar.  Every name and
note comes from files the user scored, so all text is escaped.
"""

from __future__ import annotations

from html import escape

from memgen.scorers.aggregate import ProbeCell
from memgen.scorers.plots import OUTCOME_COLOURS

_STYLE = ("border-collapse:collapse;font-family:system-ui,sans-serif;font-size:12px;margin:4px 0 12px 0")
_TD = "padding:2px 8px;border-bottom:1px solid #ddd;text-align:right"
_TH = "padding:2px 8px;border-bottom:2px solid #999;text-align:right"


def _acc(correct: int, total: int, ci: list[float] | None) -> str:
    return escape(ProbeCell(correct, total, ci95=tuple(ci) if ci else None).text()) if total else "–"


def _bar(outcomes: dict[str, int], total: int) -> str:
    """The outcome mix as a 220-pixel stacked bar, each part titled with its outcome and share."""
    parts = []
    for o, k in outcomes.items():
        if k:
            share = k / total
            parts.append(f'<span title="{escape(o)} {100 * share:.1f}% ({k})" style="display:inline-block;'
                         f'height:12px;width:{220 * share:.1f}px;background:{OUTCOME_COLOURS.get(o, "#999")}">'
                         "</span>")
    return f'<span style="display:inline-block;white-space:nowrap;width:220px">{"".join(parts)}</span>'


def _model_table(m: dict, probes: list[str], lenient: bool) -> str:
    head = ["probe", "n", "strict"] + (["lenient"] if lenient else []) + ["outcome mix (strict)"]
    rows = []
    entries = [(p, m["by_probe"][p]) for p in probes if p in m["by_probe"]]
    entries.append(("all", {**m["overall"], "outcomes": m["outcomes"]}))
    for p, c in entries:
        cols = [f"<b>{escape(p)}</b>" if p == "all" else escape(p), str(c["total"]),
                _acc(c["correct"], c["total"], c["ci95"])]
        if lenient:
            lc = c["lenient"]
            cols.append(_acc(lc["correct"], c["total"], lc["ci95"]))
        cols.append(_bar(c["outcomes"], c["total"]))
        rows.append("<tr>" + "".join(f'<td style="{_TD}">{x}</td>' for x in cols) + "</tr>")
    header = "<tr>" + "".join(f'<th style="{_TH}">{escape(h)}</th>' for h in head) + "</tr>"
    return f'<table style="{_STYLE}">{header}{"".join(rows)}</table>'


def _legend(outcomes: list[str]) -> str:
    keys = "".join(f'<span style="margin-right:10px"><span style="display:inline-block;width:10px;height:10px;'
                   f'background:{OUTCOME_COLOURS.get(o, "#999")}"></span> {escape(o)}</span>' for o in outcomes)
    return f'<div style="font-size:11px;font-family:system-ui,sans-serif">{keys}</div>'


def report_html(data: dict) -> str:
    """The HTML of a report's ``data`` (:class:`~memgen.scorers.aggregate.Report`)."""
    lenient = any(m.get("text_queries") for m in data["models"])
    prov = data.get("provenance") or {}
    out = [f'<div><div style="font-family:system-ui,sans-serif"><b>memgen score</b>: {escape(str(data["dataset"]))}'
           "</div>"]
    if prov:
        sha = prov.get("manifest_sha256") or "(in memory)"
        out.append('<div style="font-size:11px;color:#555;font-family:system-ui,sans-serif">'
                   f"memgen {escape(str(prov['memgen_version']))}, generator "
                   f"{escape(str(prov['generator_version']))}, manifest sha256 {escape(sha[:16])}; "
                   "95% intervals clustered by episode</div>")
    for m in data["models"]:
        title = f"{escape(m['name'])}: {m['queries']} queries"
        if m["missing"]:
            title += f", {m['missing']} without a prediction"
        out.append(f'<div style="font-family:system-ui,sans-serif;margin-top:8px"><b>{title}</b></div>')
        out += [f'<div style="font-size:11px;color:#a33">{escape(n)}</div>' for n in m["notes"]]
        out.append(_model_table(m, data["probes"], lenient))
    used = [o for o in data["outcomes"] if any(m["outcomes"][o] for m in data["models"])]
    out.append(_legend(used))
    if not lenient:
        out.append('<div style="font-size:11px;color:#555">Lenient scoring is strict scoring for token answers.</div>')
    out.append("</div>")
    return "".join(out)
