"""Can a bag-of-words reader tell one kind of sentence from another?  Logistic regression over
word 1-2-grams and character 3-5-grams (tf-idf), trained on some episodes and scored (ROC AUC)
on the others."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: sentences kept per class and task (a deterministic sample), so that long datasets stay quick
MAX_PER_CLASS = 4000


@dataclass(frozen=True)
class TaskResult:
    """One classification task: ROC AUC on held-out episodes and the most telling features."""

    name: str
    positive: str
    negative: str
    n_train: int
    n_test: int
    auc: float | None  # None: too few sentences of a class, or too few episodes, to measure
    toward_positive: tuple[str, ...]
    toward_negative: tuple[str, ...]


def _sample(idx: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    return np.sort(rng.choice(idx, MAX_PER_CLASS, replace=False)) if idx.size > MAX_PER_CLASS else idx


def classify(name: str, pos_text: list[str], pos_ep: list[int], neg_text: list[str], neg_ep: list[int],
             positive: str, negative: str, seed: int = 0, top: int = 6) -> TaskResult:
    """Train on about 70% of the episodes, report the AUC on the rest (every sentence of an
    episode falls on one side)."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score
    from sklearn.pipeline import FeatureUnion

    rng = np.random.default_rng(seed)
    text = np.array(pos_text + neg_text, dtype=object)
    y = np.r_[np.ones(len(pos_text), dtype=np.int8), np.zeros(len(neg_text), dtype=np.int8)]
    ep = np.array(pos_ep + neg_ep, dtype=np.int64)
    keep = np.sort(np.r_[_sample(np.flatnonzero(y == 1), rng), _sample(np.flatnonzero(y == 0), rng)])
    text, y, ep = text[keep], y[keep], ep[keep]
    episodes = np.unique(ep)
    test_eps = rng.permutation(episodes)[: max(1, int(round(0.3 * episodes.size)))]
    test = np.isin(ep, test_eps)
    empty = TaskResult(name, positive, negative, int((~test).sum()), int(test.sum()), None, (), ())
    if episodes.size < 2 or any(len(set(y[m].tolist())) < 2 for m in (test, ~test)):
        return empty
    features = FeatureUnion([
        ("word", TfidfVectorizer(ngram_range=(1, 2), min_df=2, token_pattern=r"(?u)\b\w+\b", sublinear_tf=True)),
        ("char", TfidfVectorizer(analyzer="char_wb", ngram_range=(3, 5), min_df=3, max_features=60000,
                                 sublinear_tf=True)),
    ])
    x_train = features.fit_transform(text[~test].tolist())
    model = LogisticRegression(C=1.0, max_iter=2000, class_weight="balanced", solver="liblinear")
    model.fit(x_train, y[~test])
    score = model.decision_function(features.transform(text[test].tolist()))
    auc = float(roc_auc_score(y[test], score))
    names = features.get_feature_names_out()
    order = np.argsort(model.coef_[0])
    label = lambda i: names[i].replace("word__", "w:").replace("char__", "c:")  # noqa: E731
    return TaskResult(name, positive, negative, int((~test).sum()), int(test.sum()), auc,
                      tuple(label(i) for i in order[::-1][:top]), tuple(label(i) for i in order[:top]))
