"""What a generate job is asked: a :class:`Request` (families x renderings x lengths, episodes,
seed, knobs, rendering options), checked up front (:func:`validate`), and cut into
:class:`ShardTask` s (:func:`tasks`): a shard is a pure function of (request, config, shard
index), so shards can be made in any order, by any number of workers, and skipped when they
already exist."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path

from memgen.format.codes import DISTRACTOR_KINDS
from memgen.format.errors import DataError, UsageError
from memgen.format.names import MAX_SHARDS, SHARD_FORMATS, SPLIT_NAME, config_name, printable, shard_name
from memgen.format.vocab import Vocab
from memgen.generators.knobs import Knobs, Plan
from memgen.generators.registry import get_family
from memgen.io.dataset import MANIFEST, parse_manifest
from memgen.render.registry import MIN_LENGTH, RenderOptions, get_rendering

#: longest episode: Arrow's list offsets are int32, so one row holds fewer than 2**31 tokens
MAX_LENGTH = (1 << 31) - 1
#: tokens per shard when --shard-size is not given: bounds a worker's memory at any length
SHARD_TOKENS = 1 << 22
#: episodes per config: checked before anything is planned (a job of this size takes days)
MAX_EPISODES = 100_000_000
#: the power-law exponent of the spacing of events (--alpha); outside it the draws overflow
MIN_ALPHA, MAX_ALPHA = 0.01, 100.0


@dataclass(frozen=True)
class Request:
    """Everything that decides the output bytes of ``memgen generate``."""

    families: tuple[str, ...]
    renderings: tuple[str, ...] = ("token",)
    lengths: tuple[int, ...] = (4096,)
    episodes: int = 100
    seed: int = 0
    split: str = "test"
    shard_size: int | None = None
    knobs: Knobs = field(default_factory=Knobs)
    render: RenderOptions = field(default_factory=RenderOptions)
    #: shard files: parquet (the default) or arrow (Arrow IPC); both zstd-compressed
    format: str = "parquet"

    def __post_init__(self) -> None:
        # a notebook writes Request(families="overwrite"): one name (or "a,b") is a tuple of names,
        # never a tuple of its letters; a list is a tuple, one length a tuple of one
        for name in ("families", "renderings"):
            object.__setattr__(self, name, _names(getattr(self, name)))
        if isinstance(self.lengths, int):
            object.__setattr__(self, "lengths", (self.lengths,))
        elif not isinstance(self.lengths, tuple):
            object.__setattr__(self, "lengths", tuple(self.lengths))
        kinds = self.knobs.distractor_kinds
        if not isinstance(kinds, tuple):
            object.__setattr__(self, "knobs", replace(self.knobs, distractor_kinds=_names(kinds)))
        if not isinstance(self.render.depth, tuple):
            object.__setattr__(self, "render", replace(self.render, depth=tuple(self.render.depth)))

    def to_dict(self) -> dict:
        d = asdict(self)
        d["render"]["depth"] = list(self.render.depth)
        if d["render"]["passage_size"] is None:  # no passages: the manifest reads as before they existed
            del d["render"]["passage_size"]
        d["knobs"]["distractor_kinds"] = list(self.knobs.distractor_kinds)
        for k in ("families", "renderings", "lengths"):
            d[k] = list(d[k])
        return d

    @classmethod
    def from_dict(cls, d: dict) -> Request:
        knobs = Knobs(**{**d["knobs"], "distractor_kinds": tuple(d["knobs"]["distractor_kinds"])})
        r = dict(d["render"])
        r["vocab"] = Vocab(**r["vocab"])
        r["depth"] = tuple(r["depth"])
        return cls(families=tuple(d["families"]), renderings=tuple(d["renderings"]),
                   lengths=tuple(d["lengths"]), episodes=d["episodes"], seed=d["seed"],
                   split=d["split"], shard_size=d["shard_size"], knobs=knobs,
                   render=RenderOptions(**r), format=d.get("format", "parquet"))

    def shard_rows(self, length: int) -> int:
        return self.shard_size or max(1, min(10_000, SHARD_TOKENS // length))

    def command(self) -> str:
        """The canonical command line that reproduces this request."""
        parts = ["memgen generate"]
        parts += [f"--family {f}" for f in self.families]
        parts += [f"--rendering {r}" for r in self.renderings]
        parts += [f"--length {n}" for n in self.lengths]
        parts += [f"--episodes {self.episodes}", f"--seed {self.seed}", f"--split {self.split}"]
        if self.shard_size:
            parts.append(f"--shard-size {self.shard_size}")
        if self.format != "parquet":
            parts.append(f"--format {self.format}")
        default_k, default_r = Knobs(), RenderOptions()
        for f in fields(Knobs):
            v = getattr(self.knobs, f.name)
            if v != getattr(default_k, f.name):
                v = ",".join(v) if isinstance(v, tuple) else v
                parts.append(f"--{f.name.replace('_', '-')} {v}")
        for f in fields(RenderOptions):
            v = getattr(self.render, f.name)
            if f.name == "vocab":
                for g in fields(Vocab):
                    if getattr(v, g.name) != getattr(default_r.vocab, g.name):
                        parts.append(f"--{g.name.replace('_', '-')} {getattr(v, g.name)}")
            elif f.name == "passage_size":  # text passages come from --chunk-size (one flag, one size)
                if v is not None and self.render.chunk_size == default_r.chunk_size:
                    parts.append(f"--chunk-size {v}")
            elif v != getattr(default_r, f.name):
                v = f"{v[0]},{v[1]}" if isinstance(v, tuple) else v
                parts.append(f"--{f.name.replace('_', '-')} {v}")
        return " ".join(parts) + " --out DIR"


def _names(value) -> tuple[str, ...]:
    """A tuple of names from a tuple, a list or one string (comma-separated names allowed)."""
    if isinstance(value, str):
        return tuple(v.strip() for v in value.split(",") if v.strip())
    return value if isinstance(value, tuple) else tuple(value)


#: the vocabulary's fields, which :func:`make_request` takes as options beside knobs and rendering options
_VOCAB_OPTIONS = tuple(f.name for f in fields(Vocab))


def family_names(names: tuple[str, ...]) -> tuple[str, ...]:
    """The families ``names`` asks for, each once, in order: ``all`` is every registered family
    (checked: ``all,bogus`` is still a typo)."""
    from memgen.generators.registry import FAMILIES

    if "all" in names:
        for f in names:
            if f != "all":
                get_family(f)
        return tuple(FAMILIES)
    return tuple(dict.fromkeys(names))


def make_request(families: str | tuple[str, ...] | list[str], *, renderings: str | tuple[str, ...] = "token",
                 lengths: int | tuple[int, ...] = 4096, episodes: int = 100, seed: int = 0, split: str = "test",
                 shard_size: int | None = None, format: str = "parquet", **options) -> Request:
    """The :class:`Request` of ``memgen generate`` with the same options, by keyword: every
    generate flag with ``_`` for ``-`` (``overwrites=4``, ``distractor_kinds="negated"``,
    ``tokenizer="o200k"``, ``vocab_size=8192``); ``families="all"`` is every family.  An unknown
    option raises :class:`UsageError` naming the known ones; values are checked by
    :func:`validate`, as for the command."""

    knob_names = {f.name for f in fields(Knobs)}
    render_names = {f.name for f in fields(RenderOptions)} - {"vocab"}
    unknown = sorted(set(options) - knob_names - render_names - set(_VOCAB_OPTIONS))
    if unknown:
        known = ", ".join(sorted(knob_names | render_names | set(_VOCAB_OPTIONS)))
        raise UsageError(f"unknown generate option(s) {', '.join(unknown)}; known: {known}")
    fams = family_names(_names(families))
    vocab = {k: options[k] for k in _VOCAB_OPTIONS if k in options and k != "max_version"}
    max_version = options.get("max_version", Knobs().max_version)
    # as the command does: the vocabulary holds at least its default number of version markers
    vocab = Vocab(**vocab, max_version=max(Vocab().max_version, max_version))
    render = {k: options[k] for k in render_names if k in options}
    if "depth" in render:
        render["depth"] = tuple(render["depth"])
    if "chunk_size" in render and "text" in _names(renderings):  # as --chunk-size does: text passages too
        render.setdefault("passage_size", render["chunk_size"])
    return Request(families=fams, renderings=tuple(dict.fromkeys(_names(renderings))),
                   lengths=tuple(dict.fromkeys((lengths,) if isinstance(lengths, int) else lengths)),
                   episodes=episodes, seed=seed, split=split, shard_size=shard_size,
                   knobs=Knobs(**{k: options[k] for k in knob_names if k in options}),
                   render=RenderOptions(vocab=vocab, **render), format=format)


@dataclass(frozen=True)
class ShardTask:
    config: str
    family: str
    rendering: str
    length: int
    index: int
    count: int  # shards in the config
    start: int  # first episode
    rows: int
    split: str
    format: str = "parquet"

    @property
    def path(self) -> str:
        return f"data/{self.config}/{shard_name(self.split, self.index, self.count, self.format)}"


def validate(req: Request) -> list[str]:
    """Raise UsageError for anything that cannot be generated, before any file is written;
    returns the warnings to show (a knob that applies to some of the families only)."""
    if req.format not in SHARD_FORMATS:
        raise UsageError(f"--format {printable(req.format)}: choose from {', '.join(SHARD_FORMATS)}")
    for what, names in (("--family", req.families), ("--rendering", req.renderings), ("--length", req.lengths)):
        if not names:
            raise UsageError(f"{what}: give at least one")
    for f in req.families:
        get_family(f)
    for r in req.renderings:
        get_rendering(r)
    if not 1 <= req.episodes <= MAX_EPISODES:
        raise UsageError(f"--episodes {req.episodes}: use 1 to {MAX_EPISODES:,} per config")
    if req.shard_size is not None and not 1 <= req.shard_size <= req.episodes:
        raise UsageError(f"--shard-size must be 1 to --episodes ({req.episodes})")
    if not SPLIT_NAME.fullmatch(req.split):  # the shard names' pattern (format.names.SHARD_RE)
        raise UsageError(f"--split {printable(req.split)}: use letters, digits and underscores, starting with a letter")
    if req.knobs.query_position not in ("end", "interleaved"):
        raise UsageError("--query-position must be end or interleaved")
    d0, d1 = req.render.depth
    if not 0.0 <= d0 < d1 <= 1.0:
        raise UsageError("--depth must be two fractions 0 <= lo < hi <= 1")
    o = req.render
    if min(o.chunk_size, o.layout_chunk, o.segments) < 1:
        raise UsageError("--chunk-size, --layout-chunk and --segments must be at least 1")
    if o.passage_size is not None and o.passage_size < 1:
        raise UsageError("--chunk-size must be at least 1")
    if not MIN_ALPHA <= o.alpha <= MAX_ALPHA:  # also refuses nan and inf
        raise UsageError(f"--alpha {o.alpha}: the power-law exponent must be {MIN_ALPHA} to {MAX_ALPHA}")
    if req.knobs.max_version < 1:
        raise UsageError("--max-version must be at least 1")
    if req.knobs.max_version > req.render.vocab.max_version:
        raise UsageError("--max-version exceeds the vocabulary's ask-version markers")
    bad = [k for k in req.knobs.distractor_kinds if k not in DISTRACTOR_KINDS]
    if bad:
        raise UsageError(f"unknown distractor kind(s) {', '.join(bad)}; choose from {', '.join(DISTRACTOR_KINDS)}")
    warnings = knob_warnings(req)
    vocab = req.render.vocab
    for family in req.families:
        for length in req.lengths:
            if length < 64:
                raise UsageError(f"--length {length} is too short: use at least 64 tokens")
            if length > MAX_LENGTH:
                raise UsageError(f"--length {length} is too long: at most {MAX_LENGTH:,} tokens per episode")
            shards = -(-req.episodes // req.shard_rows(length))
            if shards > MAX_SHARDS:
                raise UsageError(f"{family} at --length {length}: {shards:,} shards, more than the {MAX_SHARDS:,} "
                                 "that shard names count to; raise --shard-size")
            plan = family_plan(req, family, length)
            plan.check(vocab.key_space, vocab.values)
            n_items = plan.events + plan.queries
            tail = 0 if plan.interleaved else plan.queries
            for r in req.renderings:
                need = MIN_LENGTH.get(r, lambda *a: 0)(n_items, tail, req.render)
                if need > length:
                    raise UsageError(
                        f"--length {length} is too short for {family} ({plan.events} events, "
                        f"{plan.queries} queries) in the {r} rendering: it needs at least {need} tokens; "
                        f"raise --length or lower --keys/--queries")
    return warnings


#: a family knob -> whether a family uses it, tested on the family's plan with every knob at its
#: default: a family that makes no deletes by default has no use for --deletes or --rewrite-share
_USES = {
    "overwrites": lambda p: p.overwrites > 0,
    "distractors": lambda p: p.distractors > 0,
    "distractor_kinds": lambda p: p.distractors > 0,
    "silent_share": lambda p: p.silent_share > 0,
    "deletes": lambda p: p.deletes > 0,
    "rewrite_share": lambda p: p.deletes > 0,
    "absent_keys": lambda p: p.absent > 0,
    "max_version": lambda p: p.ask_weights[1] > 0,
}


def unused_knobs(knobs: Knobs, family: str, length: int) -> list[str]:
    """The knobs set away from their default in ``knobs`` that ``family`` has no use for."""
    default, plan = Knobs(), get_family(family)(Knobs(), length)
    return [k for k, uses in _USES.items() if getattr(knobs, k) != getattr(default, k) and not uses(plan)]


def family_knobs(knobs: Knobs, family: str, length: int) -> Knobs:
    """``knobs`` as ``family`` gets them: a knob it has no use for keeps its default (the request
    warns about it, :func:`knob_warnings`)."""
    unused = unused_knobs(knobs, family, length)
    return replace(knobs, **{k: getattr(Knobs(), k) for k in unused}) if unused else knobs


def family_plan(req: Request, family: str, length: int) -> Plan:
    """The resolved plan of ``family`` at ``length`` for this request."""
    return get_family(family)(family_knobs(req.knobs, family, length), length)


def knob_warnings(req: Request) -> list[str]:
    """A knob set for families that have no use for it (``--family write --deletes 3``) is a
    UsageError when none of the request's families uses it; when some do (``--family all``), it
    is given to those only, and the warning returned says which families ignore it."""
    out = []
    for knob in _USES:
        ignoring = [f for f in req.families if any(knob in unused_knobs(req.knobs, f, n) for n in req.lengths)]
        if not ignoring:
            continue
        flag = f"--{knob.replace('_', '-')}"
        users = [f for f in req.families if f not in ignoring]
        if not users:
            from memgen.generators.registry import FAMILIES

            takers = [f for f in FAMILIES if knob not in unused_knobs(req.knobs, f, max(req.lengths))]
            raise UsageError(f"{flag} does not apply to {', '.join(ignoring)} (no such events or asks in "
                             f"{'that family' if len(ignoring) == 1 else 'those families'}); "
                             f"it applies to {', '.join(takers) or 'no family'}")
        out.append(f"{flag} applies to {', '.join(users)} only; ignored for {', '.join(ignoring)}")
    return out


def resolved_knobs(plan: Plan, query_position: str) -> dict:
    """The knob values a config was made with (the family's defaults filled in), for the manifest."""
    return {"keys": plan.keys, "absent_keys": plan.absent, "overwrites": plan.overwrites,
            "distractors": plan.distractors, "distractor_kinds": list(plan.kinds), "silent_share": plan.silent_share,
            "deletes": plan.deletes, "rewrite_share": plan.rewrite_share, "queries": plan.queries,
            "query_position": query_position, "max_version": plan.max_version}


def tasks(req: Request) -> list[ShardTask]:
    out = []
    for family in req.families:
        for rendering in req.renderings:
            for length in req.lengths:
                name = config_name(family, rendering, length)
                per = req.shard_rows(length)
                n = -(-req.episodes // per)
                for i in range(n):
                    start = i * per
                    out.append(ShardTask(name, family, rendering, length, i, n, start,
                                         min(per, req.episodes - start), req.split, req.format))
    return out


def load_request(root: str | Path) -> Request:
    path = Path(root) / MANIFEST
    m = parse_manifest(path.read_bytes(), str(path))
    try:
        return Request.from_dict(m["config"])
    except (KeyError, TypeError, ValueError, AttributeError):
        raise DataError(f"{path}: its 'config' is not a generate request") from None
