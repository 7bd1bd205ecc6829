"""Scorers: answer normalisation, outcome classification, aggregation, reports and plots.

Notebook use, the same calls as ``memgen score``::

    from memgen import scorers
    frame = scorers.read_dataset("ds")                     # once per dataset
    a = scorers.score(frame, "model_a.jsonl")
    b = scorers.score(frame, "model_b.jsonl")
    rep = scorers.report([a, b])
    rep.print(); rep.to_json(); scorers.write_plots(rep, "report/")
    a.to_table().to_pandas()                               # one row per query, with its outcome

The scorer path imports numpy, pyarrow and (for plots) matplotlib; never torch.
"""

from .dataset import read_dataset
from .frame import QueryFrame, build_frame
from .normalise import ABSENT_PHRASES, is_absent, normalise
from .outcomes import OUTCOMES, classify
from .plots import write_plots
from .predictions import Predictions, read_predictions
from .report import Report, report, wilson
from .score import ScoreResult, TokenVocab, load_frame, score

__all__ = [
    "ABSENT_PHRASES", "OUTCOMES", "Predictions", "QueryFrame", "Report", "ScoreResult", "TokenVocab",
    "build_frame", "classify", "is_absent", "load_frame", "normalise", "read_dataset", "read_predictions",
    "report", "score", "wilson", "write_plots",
]
