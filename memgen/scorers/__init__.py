"""Scorers: answer normalisation, outcome classification, aggregation, reports and plots.

Notebook use, the same calls as ``memgen score``::

    from memgen import scorers
    frame = scorers.read_dataset("ds")                     # once per dataset
    a = scorers.score(frame, "model_a.jsonl")
    b = scorers.score(frame, "model_b.jsonl")
    rep = scorers.report([a, b])                           # a notebook shows it as HTML
    rep.print(); rep.to_json(); scorers.write_plots(rep, "report/")
    a.accuracy, a.lenient_accuracy                         # strict and lenient (text answers)
    a.to_table().to_pandas()                               # one row per query, with its outcomes

The scorer path imports numpy, pyarrow and (for plots) matplotlib; never torch.
"""

from __future__ import annotations

from memgen.format.codes import OUTCOMES
from memgen.scorers.aggregate import Report, report, wilson
from memgen.scorers.answers import TokenVocab, strict_correct
from memgen.scorers.dataset import read_dataset
from memgen.scorers.frame import QueryFrame, build_frame
from memgen.scorers.normalise import ABSENT_PHRASES, is_absent, normalise, strict_form
from memgen.scorers.outcomes import classify
from memgen.scorers.plots import write_plots
from memgen.scorers.predictions import Predictions, read_predictions
from memgen.scorers.scoring import ScoreResult, load_frame, score

__all__ = [
    "ABSENT_PHRASES", "OUTCOMES", "Predictions", "QueryFrame", "Report", "ScoreResult", "TokenVocab",
    "build_frame", "classify", "is_absent", "load_frame", "normalise", "read_dataset", "read_predictions",
    "report", "score", "strict_correct", "strict_form", "wilson", "write_plots",
]
