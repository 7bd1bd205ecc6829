"""A hand-built text episode with passages, for the selector and metric tests: one sentence per
passage, the answer known."""

from __future__ import annotations

from memgen.selection.episodes import SelectionEpisode, text_episode

K1, K2 = 101, 202
STALE, CURRENT, NEGATED, OTHER = 11, 12, 13, 21

#: (passage text, event or None); the query asks K1's latest value (CURRENT, passage 2)
PASSAGES = (
    ("Note: Ana Garcia's Bratislava trip is booked on EI 3578.",
     {"op": "write", "key": K1, "value": STALE, "kind": ""}),
    ("The phones rang without a break around the water cooler, and nobody minded.", None),
    ("Update: Ana Garcia's Bratislava trip now flies on TP 9816.",
     {"op": "overwrite", "key": K1, "value": CURRENT, "kind": ""}),
    ("Ana Garcia's Bratislava trip is not booked on flight LX 8471.",
     {"op": "distractor", "key": K1, "value": NEGATED, "kind": "negated"}),
    ("Note: Clara Navarro's Bristol trip is booked on flight OK 9556.",
     {"op": "write", "key": K2, "value": OTHER, "kind": ""}),
    ("A courier arrived with passports just before the lunch break.", None),
)
QUESTION = "Which flight is Ana Garcia's Bratislava trip booked on now?"


def hand_row() -> dict:
    pieces, offsets, events = [], [0], []
    for i, (text, ev) in enumerate(PASSAGES):
        sep = "" if i == 0 else "\n\n"
        start = sum(map(len, pieces)) + len(sep)
        pieces.append(sep + text)
        offsets.append(sum(map(len, pieces)))
        if ev is not None:
            events.append({**ev, "version": 0, "signal": True, "alias": -1, "start": start,
                           "end": start + len(text), "chunk": i, "segment": -1})
    context = "".join(pieces)
    query = {"qid": 0, "key": K1, "ask": "latest", "version": 0, "answer": CURRENT, "answer_text": "TP 9816",
             "probe": "distractor", "start": -1, "end": -1, "evidence": [2],
             "traps": {"stale": [STALE], "distractor": [NEGATED], "other_keys": [OTHER], "deleted": []}}
    return {"id": "hand", "context": context, "passages": offsets, "events": events, "queries": [query],
            "questions": [QUESTION], "prompt": f"Instructions.\n<log>\n{context}\n</log>\n1. {QUESTION}\n"}


def hand_episode() -> SelectionEpisode:
    return text_episode(hand_row(), "hand")
