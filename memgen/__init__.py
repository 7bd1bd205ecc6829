"""memgen: episodes, renderings, models and scorers for memory management in long-context models.

The top-level Python API, the same library the ``memgen`` command calls::

    import memgen
    table = memgen.generate("overwrite", lengths=4096, episodes=10)   # in memory: a pyarrow Table
    ds = memgen.generate("overwrite", renderings="text", as_datasets=True)  # a datasets.Dataset
    memgen.generate("overwrite,discard", out="ds", episodes=100)      # a Hub-ready dataset folder
    t = memgen.load("ds", "overwrite-token-4096")                     # one config as a pyarrow Table
    r = memgen.score("ds", "model-a.jsonl")                           # one outcome per query
    r                                                                  # in a notebook: the report
    r.accuracy, r.lenient_accuracy, r.counts(), r.to_table().to_pandas()
    memgen.scorers.report([r, r2]).to_json()                           # several models side by side

Each function imports its library when it is called, so ``import memgen`` (and ``memgen
--help``) stays light.
"""

from __future__ import annotations

__version__ = "0.1.0"  # a literal: setuptools reads it without importing memgen

# ``typing`` and ``pathlib`` are not imported at run time: ``import memgen`` costs nothing
TYPE_CHECKING = False
if TYPE_CHECKING:
    from pathlib import Path
    from typing import Any

    import pyarrow as pa

    from memgen.scorers import ScoreResult

__all__ = ["__version__", "generate", "load", "score"]

#: schema metadata key of tables from :func:`generate` and :func:`load`: the dataset's manifest
#: (JSON), so that :func:`score` finds the token vocabulary of a table as of a folder
MANIFEST_KEY = b"memgen.manifest"


def generate(families: str | tuple[str, ...] | list[str] = "all", out: str | Path | None = None, *,
             renderings: str | tuple[str, ...] = "token", lengths: int | tuple[int, ...] = 4096,
             episodes: int = 100, seed: int = 0, split: str = "test", shard_size: int | None = None,
             workers: int | None = 1, as_datasets: bool = False,
             **options: Any) -> Path | pa.Table | dict[str, pa.Table] | Any:
    """Generate episodes as ``memgen generate`` does, with its options by keyword (each flag with
    ``_`` for ``-``: ``overwrites=4``, ``distractor_kinds="negated"``, ``tokenizer="o200k"``,
    ``domain="inventory"``, ``vocab_size=8192``; see :func:`memgen.pipeline.request.make_request`).

    ``families``, ``renderings`` and ``lengths`` take one value or several (``"overwrite,discard"``
    or a tuple).  With ``out``, writes (or resumes) the dataset folder there and returns its path;
    the bytes are those of the command with the same options.  Without ``out``, generates in a
    temporary folder and returns the episodes in memory: a pyarrow Table when the request makes one
    config, else a dict ``{config: Table}``; with ``as_datasets``, a ``datasets.Dataset`` (several
    configs: a ``datasets.DatasetDict`` keyed by config) that :func:`score` takes as it takes a
    table (text configs; token ids need the table's vocabulary: keep the table, or pass
    ``vocab=``).  Bad options raise :class:`~memgen.format.errors.UsageError` before anything is
    written."""
    from pathlib import Path

    from memgen.pipeline.job import generate as run
    from memgen.pipeline.request import make_request

    req = make_request(families, renderings=renderings, lengths=lengths, episodes=episodes, seed=seed,
                       split=split, shard_size=shard_size, **options)
    if out is not None:
        run(req, out, workers=workers)
        return Path(out)
    import tempfile

    with tempfile.TemporaryDirectory(prefix="memgen-") as tmp:
        manifest = run(req, tmp, workers=workers)
        tables = {name: load(tmp, name) for name in manifest["configs"]}
    if as_datasets:
        return _as_datasets(tables)
    return next(iter(tables.values())) if len(tables) == 1 else tables


def _as_datasets(tables: dict[str, pa.Table]) -> Any:
    """``tables`` as one ``datasets.Dataset``, or a ``DatasetDict`` keyed by config."""
    from memgen.format.errors import UsageError

    try:
        import datasets
        from datasets.table import InMemoryTable
    except ImportError:
        raise UsageError("as_datasets=True needs the 'datasets' package: pip install datasets") from None
    out = {name: datasets.Dataset(InMemoryTable(t), info=datasets.DatasetInfo(config_name=name))
           for name, t in tables.items()}
    return next(iter(out.values())) if len(out) == 1 else datasets.DatasetDict(out)


def load(path: str | Path, config: str | None = None, split: str | None = None) -> pa.Table:
    """The rows of one config of the dataset folder ``path`` (all its splits, or ``split``), as a
    pyarrow Table whose schema metadata holds the manifest.  The folder must pass ``memgen
    verify``; ``config`` may be left out when the folder has only one.  (The folder is a Hub
    dataset too: ``datasets.load_dataset(path, config)`` reads it as well.)"""
    import json

    import pyarrow as pa

    from memgen.format.errors import UsageError
    from memgen.format.names import SHARD_RE
    from memgen.io.dataset import open_verified
    from memgen.io.shards import read_shard

    ds = open_verified(path)
    if config is None:
        if len(ds.configs) != 1:
            raise UsageError(f"{path}: name a config; it has: {', '.join(ds.configs)}")
        config = ds.configs[0]
    paths = ds.shard_paths(config)
    if split is not None:
        paths = [p for p in paths if (m := SHARD_RE.match(p.name)) and m.group("split") == split]
        if not paths:
            raise UsageError(f"{path}: config {config} has no shards of split {split!r}")
    table = pa.concat_tables([read_shard(p) for p in paths]) if paths else ds.table(config)
    return table.replace_schema_metadata({**(table.schema.metadata or {}),
                                          MANIFEST_KEY: json.dumps(ds.manifest).encode()})


def score(dataset: str | Path | pa.Table | Any, predictions: Any, **options: Any) -> ScoreResult:
    """Classify every query of ``dataset`` (a folder, a table from :func:`generate` or
    :func:`load`, a ``datasets.Dataset``, or a :class:`~memgen.scorers.QueryFrame`) by one
    model's ``predictions`` (a predictions file, a list of records, a dict ``{(id, qid): answer}``,
    a DataFrame, or one answer per query); ``options`` as :func:`memgen.scorers.score` (``name``,
    ``config``, ``split``, ``vocab``, ``value_surface``).  Returns the
    :class:`~memgen.scorers.ScoreResult`: ``accuracy`` and ``lenient_accuracy``, ``counts()``,
    ``to_table()``, ``report()`` (the :class:`~memgen.scorers.Report`: JSON, Markdown); a
    notebook renders it as its report (per-probe accuracy, strict and lenient, with 95%
    intervals clustered by episode, and the outcome mix).  ``memgen.scorers.report([r, ...])``
    makes the report of several."""
    from memgen.scorers import score as run

    return run(dataset, predictions, **options)
