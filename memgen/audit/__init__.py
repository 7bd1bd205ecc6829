"""``memgen audit``: does a text dataset give its answers away without memory?

* :mod:`.units` cuts each rendered episode into labelled sentences (events by op or distractor
  kind, filler) with the episode's key surfaces masked;
* :mod:`.classify` trains bag-of-words / character n-gram logistic regressions on some episodes
  and reports ROC AUC on the others (can a reader tell events from filler by their words?);
* :mod:`.heuristics` scores no-memory answering rules ("the last value-shaped string mentioned
  with the key", "the first", "always unknown") per probe;
* :mod:`.report` runs them all over a dataset folder (:func:`~.report.audit_dataset`).

Imports scikit-learn (the ``select`` extra), never torch.
"""
