"""Domains of the text rendering: one folder of templates each (docs/text.md says how to add one).

``memgen/templates/<domain>/`` holds

* ``domain.yaml``: what keys and values look like (:mod:`memgen.render.text.surfaces`) and the filler
  grammar (:mod:`memgen.render.text.filler`);
* one jinja2 file per category below, one phrasing per line (``{# ... #}`` lines and blank
  lines are skipped).  Variables: ``key``, ``value``, ``lookalike`` (the look-alike key's
  surface), ``old`` (an overwrite's replaced value), ``other`` and ``other2`` (values of
  other entities, never of the episode: hard negatives), ``ordinal`` ("second",
  "twenty-first") and ``k``; any other name is a *field* (the filler grammar's ``fields`` or
  the event-only ``phrases`` of ``domain.yaml`` and the shared filler file), one option drawn
  per event, so that a few lines compose many phrasings; filter ``cap`` capitalises the first
  letter only.

Folders on ``$MEMGEN_TEMPLATE_PATH`` (``:``-separated) are searched after the package's own, so
a domain can live outside the package.  Every domain is checked when it is loaded; a problem
raises :class:`~memgen.format.errors.UsageError` naming the file and what to fix.

Domain names come from untrusted places too (a dataset's ``domain`` column, a manifest): a
domain resolves only by its *name* (:data:`DOMAIN_NAME`), as a folder directly inside one of
these roots, never as a path; and templates render in jinja2's
:class:`~jinja2.sandbox.ImmutableSandboxedEnvironment`, so no template can reach Python objects
or change state (DESIGN.md section 9).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import jinja2
import jinja2.meta
import jinja2.sandbox
import numpy as np
import yaml

from memgen.format.codes import DISTRACTOR_KINDS
from memgen.format.errors import UsageError
from memgen.render.text.filler import ENTITY_FIELDS, ENTITY_POOL, Grammar, Others
from memgen.render.text.surfaces import Lookalike, Space, parse_part

TEMPLATE_ROOT = Path(__file__).resolve().parents[2] / "templates"


SHARED = "_shared"

WRITE_CATEGORIES = ("write", "overwrite", "silent_write", "delete")
EVENT_CATEGORIES = WRITE_CATEGORIES + DISTRACTOR_KINDS
ASK_CATEGORIES = ("latest", "version", "previous")
PROMPT_CATEGORIES = ("intro", "absent")
CATEGORIES = EVENT_CATEGORIES + ASK_CATEGORIES + PROMPT_CATEGORIES

#: Words that signal "store this": an explicit write uses one; a silent write, filler and
#: every surface form never do.
CUE_WORDS = frozenset("""
note noted notes notice remember remembered reminder memo memorise memorize update updated updates
updating record recorded records recording log logged logs logging set sets setting change changed
changes changing save saved store stored storing entry entries register registered write written
keep kept track tracked important attention correction corrected please flag flagged
""".split())

#: Words that make a statement hearsay, a guess or possibly stale: only an ``unconfirmed``
#: distractor may use them (and must use one); a fact (write, overwrite, silent write, delete,
#: look-alike) never does.
HEDGE_WORDS = frozenset("""
seem seems seemed seemingly apparently apparent reportedly supposedly allegedly rumour rumours rumor rumored
rumoured heard hearsay claim claims claimed claiming thought think thinks believe believes believed guess
guessed guesses might may maybe perhaps probably possibly presumably unconfirmed unverified unclear
diff diffs draft proposed proposal suggest suggested suggests
""".split())

#: Words that presuppose a value the key already has (a move, a switch, a rebooking): only an
#: overwrite or a delete may use them.  A first write, a passing mention and every distractor
#: can be about a key with no value yet, so they never do.
PRESUPPOSING_WORDS = frozenset("""
now again instead still anymore longer switch switched switches switching move moved moves moving
rebook rebooked rebooking rename renamed renaming reassign reassigned amend amended change changed changes
shifted replace replaced replacing revert reverted back previous previously old former formerly
new newly current currently
""".split())

#: the kind of statement each distractor kind must make, by one of these words
REQUIRED_WORDS = {
    "negated": frozenset("not never no nor".split()),
    "hypothetical": frozenset("if suppose supposing were would had imagine".split()),
    "rejected": frozenset("denied rejected refused declined turned vetoed blocked".split()),
    "unconfirmed": HEDGE_WORDS,
}
_FACTS = ("write", "overwrite", "silent_write", "delete", "lookalike")
_NO_PRESUPPOSITION = ("write", "silent_write", *DISTRACTOR_KINDS)

_SENTINELS = {"key": "keysentinel", "value": "valsentinel", "lookalike": "looksentinel",
              "old": "oldsentinel", "other": "othersentinel", "other2": "secondothersentinel",
              "ordinal": "ordsentinel", "k": 7}
# what each category's phrasings must (and must not) mention
_MUST = {c: ("key", "value") for c in EVENT_CATEGORIES}
_MUST.update({"delete": ("key",), "lookalike": ("lookalike", "value"), "latest": ("key",),
              "previous": ("key",), "version": ("key", "ordinal"), "intro": (), "absent": ()})
_MUST_NOT = {"delete": ("value",), "lookalike": ("key",)}
# what the events about other entities in the filler are (Domain.decoys), about as often as in `mixed`
_DECOY_FIRST = ("write", "silent_write", "negated", "hypothetical", "unconfirmed", "rejected")
_DECOY_FIRST_P = np.array([0.28, 0.52, 0.05, 0.05, 0.05, 0.05])
_DECOY_LATER = ("overwrite", "silent_write", "delete", "negated", "unconfirmed")
_DECOY_LATER_P = np.array([0.38, 0.42, 0.1, 0.05, 0.05])
#: the categories that may name ``old`` and ``other``
_MAY = {"old": ("overwrite",), "other": ("write", "overwrite", "silent_write"),
        "other2": ("write", "overwrite", "silent_write")}


def words(text: str) -> list[str]:
    """Lower-case words (runs of letters) of ``text``."""
    return re.findall(r"[a-z]+", text.lower())


def has_cue(text: str) -> bool:
    """True if ``text`` holds a write-signal word (:data:`CUE_WORDS`)."""
    return any(w in CUE_WORDS for w in words(text))


def _cap(s: str) -> str:
    return s[:1].upper() + s[1:]


#: what a domain may be called: a plain name, never a path
DOMAIN_NAME = re.compile(r"[a-z][a-z0-9_]{0,63}")

_ENV = jinja2.sandbox.ImmutableSandboxedEnvironment(undefined=jinja2.StrictUndefined, autoescape=False,
                                                    keep_trailing_newline=False)
_ENV.filters["cap"] = _cap
_PLAIN_VAR = re.compile(r"\{\{\s*([A-Za-z_]\w*)\s*\}\}")


class Phrasing:
    """One phrasing: a jinja2 template.  A line whose only jinja is plain ``{{ name }}`` fields
    renders through ``str.format`` instead (same text, a few times faster).  ``fields`` are the
    names it uses beyond the event's own variables (grammar fields, drawn per event)."""

    def __init__(self, source: str):
        self.source = source
        self._template = _ENV.from_string(source)
        used = jinja2.meta.find_undeclared_variables(_ENV.parse(source))
        self.fields = tuple(sorted(used - set(_SENTINELS)))
        self.uses = frozenset(used & set(_SENTINELS))
        # what a caller leaves out: empty event variables, each field's first option (the domain
        # sets those when it loads; every name was checked then, so nothing here hides a typo)
        self.defaults: dict[str, object] = dict.fromkeys(self.uses, "")
        bare = _PLAIN_VAR.sub("", source)
        self._fmt = None
        if not any(tok in bare for tok in ("{{", "}}", "{%", "%}", "{#", "#}", "{", "}")):
            self._fmt = _PLAIN_VAR.sub(lambda m: "{" + m.group(1) + "}", source)

    def render(self, **variables) -> str:
        variables = {**self.defaults, **variables}
        if self._fmt is not None:
            try:
                return self._fmt.format_map(variables)
            except KeyError as e:
                raise jinja2.UndefinedError(f"{e.args[0]!r} is undefined") from None
        return self._template.render(**variables)


@dataclass
class Domain:
    """A loaded, checked domain."""

    name: str
    root: Path
    description: str
    thing_key: str  # what a key is, in words ("product")
    thing_value: str  # what a value is ("bin")
    keys: Space
    values: Space
    phrasings: dict[str, list[Phrasing]]
    sources: dict[str, list[str]]
    filler: Grammar
    short: Grammar
    phrases: dict[str, np.ndarray]  # the fields of event phrasings: filler's and the event-only ``phrases``
    head: jinja2.Template
    tail: jinja2.Template

    def render(self, category: str, rng: np.random.Generator, others: Others | None = None, **variables) -> str:
        """One phrasing of ``category``, drawn from ``rng`` with its grammar fields: among those
        that use ``old`` only when ``variables`` has one.  ``other`` and ``other2``, where the
        phrasing names them and ``variables`` does not, come from ``others``."""
        temps = self.phrasings[category]
        if variables.get("old") is None:
            temps = [t for t in temps if "old" not in t.uses] or temps
        t = temps[int(rng.integers(len(temps)))]
        if others is not None:
            for var in ("other", "other2"):
                if var in t.uses and var not in variables:
                    variables[var] = others.value()
        for f in t.fields:
            opts = self.phrases[f]
            pick = opts[int(rng.integers(len(opts)))]
            while len(opts) > 1 and any(v is not None and v == pick for v in variables.values()):
                pick = opts[int(rng.integers(len(opts)))]  # never one person (or act) twice in a sentence
            variables[f] = pick
        return t.render(**variables)

    def decoys(self, rng: np.random.Generator, n: int, others: Others) -> list[tuple[str, bool]]:
        """``n`` events about other entities, for the filler (hard negatives: never asked, never an
        episode's key or value): ``(text, explicit)`` in reading order, ``explicit`` for those that
        stand as paragraphs of their own, as real explicit events do.  Keys with a value may be
        overwritten or deleted; others are written or named in a distractor (never presupposed)."""
        later = rng.random(n) < 0.35
        first_cat = np.searchsorted(np.cumsum(_DECOY_FIRST_P), rng.random(n) * _DECOY_FIRST_P.sum())
        later_cat = np.searchsorted(np.cumsum(_DECOY_LATER_P), rng.random(n) * _DECOY_LATER_P.sum())
        pick = rng.random(n)
        held: dict[str, str] = {}
        keys: list[str] = []  # the keys of ``held``, to pick from in O(1)
        out = []
        for i in range(n):
            if keys and later[i]:
                key = keys[int(pick[i] * len(keys))]
                cat = _DECOY_LATER[min(int(later_cat[i]), len(_DECOY_LATER) - 1)]
            else:
                key = others.key()
                cat = _DECOY_FIRST[min(int(first_cat[i]), len(_DECOY_FIRST) - 1)]
            value = "" if cat == "delete" else others.value()
            text = self.render(cat, rng, others, key=key, value=value, old=held.get(key), lookalike="")
            if cat == "delete":
                held.pop(key, None)
                keys.remove(key)
            elif cat in WRITE_CATEGORIES:
                if key not in held:
                    keys.append(key)
                held[key] = value
            out.append((text, cat != "silent_write"))
        return out

    def key_surface(self, key_id: int) -> str:
        return self.keys.surface(key_id)

    def value_surface(self, value_id: int) -> str:
        return self.values.surface(value_id)

    def lookalike_surface(self, key_id: int, alias_id: int) -> str:
        return self.keys.lookalike(key_id, alias_id)


def template_dirs() -> list[Path]:
    """Where domains are looked for: the package's templates, then ``$MEMGEN_TEMPLATE_PATH``."""
    extra = [Path(p) for p in os.environ.get("MEMGEN_TEMPLATE_PATH", "").split(os.pathsep) if p]
    return [TEMPLATE_ROOT, *extra]


def available_domains() -> list[str]:
    """Names of every domain folder (one holding ``domain.yaml``), sorted, without duplicates."""
    seen: dict[str, None] = {}
    for d in template_dirs():
        if d.is_dir():
            for sub in sorted(d.iterdir()):
                if sub.is_dir() and not sub.name.startswith("_") and (sub / "domain.yaml").is_file():
                    seen.setdefault(sub.name, None)
    return sorted(seen)


def _find(name: str) -> Path:
    """The folder of domain ``name``: a direct child of one of :func:`template_dirs` (resolved,
    so neither a name nor a link can lead outside the root it was found in)."""
    if not isinstance(name, str) or not DOMAIN_NAME.fullmatch(name):
        raise UsageError(f"domain {str(name)[:80]!r}: a domain is a name (lower-case letters, digits, _), "
                         "not a path; put your own domain folders on $MEMGEN_TEMPLATE_PATH")
    for d in template_dirs():
        p = d / name
        if (p / "domain.yaml").is_file():
            root = d.resolve()
            if not all(q.resolve().is_relative_to(root) for q in (p, *p.iterdir())):
                raise UsageError(f"domain {name!r}: {p} links outside {d}; domain files must lie in their root")
            return p
    raise UsageError(f"unknown domain {name!r}; choose from: {', '.join(available_domains())}")


def _shared_file(root: Path, name: str) -> Path:
    """A domain's own copy of a shared file, else the package's."""
    own = root / name
    return own if own.is_file() else TEMPLATE_ROOT / SHARED / name


def _yaml(path: Path) -> dict:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError, UnicodeDecodeError) as e:
        raise UsageError(f"{path}: cannot read it as YAML ({str(e).splitlines()[0]})") from None
    if not isinstance(data, dict):
        raise UsageError(f"{path}: must be a YAML mapping")
    return data


def _phrasings(path: Path) -> list[str]:
    if not path.is_file():
        raise UsageError(f"{path}: missing; every domain needs one file per category "
                         f"({', '.join(CATEGORIES)})")
    lines = [ln.strip() for ln in path.read_text(encoding="utf-8").splitlines()]
    return [ln for ln in lines if ln and not (ln.startswith("{#") and ln.endswith("#}"))]


def _space(domain: str, which: str, spec: dict, where: Path) -> Space:
    if not isinstance(spec, dict) or "format" not in spec or "parts" not in spec:
        raise UsageError(f"{where}: '{which}' needs 'format' and 'parts'")
    parts = {n: parse_part(n, p, f"{where}: {which}") for n, p in spec["parts"].items()}
    las = []
    for la in spec.get("lookalike", []) or []:
        alts = tuple(str(x) for x in la.get("words", la.get("letters", "")))
        las.append(Lookalike(str(la["part"]), str(la.get("mode", "words")), alts))
    return Space(domain, which[:-1], str(spec["format"]), parts, las, str(spec.get("salt", "")))


@cache
def load_domain(name: str) -> Domain:
    """The domain called ``name``, loaded and checked once per process."""
    root = _find(name)
    where = root / "domain.yaml"
    cfg = _yaml(where)
    keys = _space(name, "keys", cfg.get("keys"), where)
    values = _space(name, "values", cfg.get("values"), where)
    if not keys.lookalikes:
        raise UsageError(f"{where}: keys need a 'lookalike' rule (the lookalike distractor uses it)")

    # filler: the domain's grammar merged with the shared one
    shared = _yaml(TEMPLATE_ROOT / SHARED / "filler.yaml")
    f = cfg.get("filler") or {}
    if not isinstance(f, dict):
        raise UsageError(f"{where}: 'filler' must be a mapping")
    if "slots" in f:
        raise UsageError(f"{where}: filler 'slots' is now called 'fields'; rename it")
    fields = {**(shared.get("fields") or {}), **(f.get("fields") or {})}
    taken = [n for n in ENTITY_FIELDS if n in fields]
    if taken:
        raise UsageError(f"{where}: the field name {taken[0]!r} is memgen's own (surfaces of other keys and values)")
    for name, space in zip(ENTITY_FIELDS, (keys, values, values), strict=True):
        fields[name] = space.surfaces(range(space.capacity - min(ENTITY_POOL, space.capacity // 4), space.capacity))
    sentences = list(f.get("sentences") or [])
    if f.get("shared", True):
        sentences += list(shared.get("sentences") or [])
    short = list(f.get("short") or []) + list(shared.get("short") or [])
    filler = Grammar(sentences, fields, f"{where}: filler")
    short_g = Grammar(short, fields, f"{where}: filler short")

    sources = {c: _phrasings(root / f"{c}.j2") for c in CATEGORIES}
    phrasings = {}
    for c, lines in sources.items():
        try:
            phrasings[c] = [Phrasing(ln) for ln in lines]
        except jinja2.TemplateSyntaxError as e:
            raise UsageError(f"{root / (c + '.j2')}: line {e.lineno}: {e.message}") from None
    try:
        head = _ENV.from_string(_shared_file(root, "prompt_head.j2").read_text(encoding="utf-8"))
        tail = _ENV.from_string(_shared_file(root, "prompt_tail.j2").read_text(encoding="utf-8"))
    except jinja2.TemplateSyntaxError as e:
        raise UsageError(f"prompt template: line {e.lineno}: {e.message}") from None
    # event-only fields (lead-ins such as "Note:" may carry write signals, which filler never does)
    event_fields = {**(shared.get("phrases") or {}), **(cfg.get("phrases") or {})}
    phrases = {**filler.fields, **{k: np.array([str(x) for x in v], dtype=object) for k, v in event_fields.items()
                                   if isinstance(v, list) and v}}
    bad = [k for k, v in event_fields.items() if not isinstance(v, list) or not v] + \
        [k for k in event_fields if k in filler.fields or k in _SENTINELS]
    if bad:
        raise UsageError(f"{where}: phrases {bad[0]!r} must be a non-empty list named unlike any field or variable")
    for temps in phrasings.values():
        for t in temps:
            t.defaults.update({f: phrases[f][0] for f in t.fields if f in phrases and f not in ENTITY_FIELDS})
    dom = Domain(name, root, str(cfg.get("description", "")), str(cfg.get("thing_key", "item")),
                 str(cfg.get("thing_value", "value")), keys, values, phrasings, sources,
                 filler, short_g, phrases, head, tail)
    check_domain(dom)
    return dom


def check_domain(dom: Domain) -> None:
    """The promises every domain keeps (raises UsageError naming the file otherwise):

    * each category has a phrasing; phrasings are one line of ASCII with no digits, and mention
      what they must (an event names its key and value; a delete names no value; a lookalike
      names the look-alike key, never the key itself; only an overwrite names ``old``, only a
      write, overwrite or silent write ``other``); every other name is a grammar field;
    * explicit writes and overwrites carry a write-signal word; silent writes never do;
    * facts (writes, overwrites, silent writes, deletes, look-alikes) are never hedged
      (:data:`HEDGE_WORDS`, in the line or in any option of its fields); first writes, silent
      writes and distractors never presuppose a value (:data:`PRESUPPOSING_WORDS`); each
      distractor kind says what it is (:data:`REQUIRED_WORDS`);
    * filler is ASCII, has no digits and no write-signal words, and shares no word with the
      key or value surfaces that hold no digit (so filler can never spell one of them out);
    * look-alikes name another entity, never a misspelling (no ``edit`` rule; a ``words`` rule's
      words differ from every word of the part in at least three letters);
    * surfaces hold no write-signal words.
    """
    for c, temps in dom.phrasings.items():
        path = dom.root / f"{c}.j2"
        if not temps:
            raise UsageError(f"{path}: needs at least one phrasing")
        for line, t in zip(dom.sources[c], temps, strict=True):
            _check_phrasing(dom, c, path, line, t)
    where = dom.root / "domain.yaml"
    _check_lookalikes(dom, where)
    vocab: set[str] = set()
    for g in (dom.filler, dom.short):
        for text in g.texts():
            if not text.isascii() or re.search(r"\d", text):
                raise UsageError(f"{where}: filler {text!r} must be ASCII without digits")
        vocab |= g.vocabulary()
    cues = sorted(vocab & CUE_WORDS)
    if cues:
        raise UsageError(f"{where}: filler uses write-signal word(s) {', '.join(cues[:5])}")
    for space in (dom.keys, dom.values):
        if space.has_digits():
            continue
        # A surface can only appear in filler if every one of its words does.  An *anchor* part
        # has a word outside the filler's vocabulary in every option; one anchor that no
        # lookalike rule alters (or two anchors) keeps every key and lookalike out of filler.
        anchors = [p.name for p in space.parts if p.kind == "words" and all(
            any(w.lower() not in vocab for w in re.findall(r"[A-Za-z0-9]+", o)) for o in p.options)]
        varied = {la.part for la in space.lookalikes}
        if not (len(anchors) >= 2 or set(anchors) - varied):
            raise UsageError(f"{where}: filler shares words with every word part of the {space.which} "
                             f"surfaces; keep the words of one part (not the lookalike part) out of filler")
    for space in (dom.keys, dom.values):
        cues = sorted(space.words() & CUE_WORDS)
        if cues:
            raise UsageError(f"{where}: {space.which} surfaces use write-signal word(s) {', '.join(cues)}")
        if not all(p.kind != "words" or all(o.isascii() for o in p.options) for p in space.parts):
            raise UsageError(f"{where}: {space.which} surfaces must be ASCII")


def _check_phrasing(dom: Domain, c: str, path: Path, line: str, t: Phrasing) -> None:
    """The rules of :func:`check_domain` for one phrasing of category ``c``."""
    missing = [f for f in t.fields if f not in dom.phrases or f in ENTITY_FIELDS]
    if missing:
        raise UsageError(f"{path}: {line!r} uses {missing[0]!r}, which is neither a variable of the event nor a "
                         f"field of the filler grammar")
    try:
        marks = {f: "fieldsentinel" + "abcdefghijklmnopqrstuvwxyz"[i % 26] for i, f in enumerate(t.fields)}
        text = t.render(**_SENTINELS, **marks)
    except (jinja2.UndefinedError, jinja2.exceptions.SecurityError) as e:
        raise UsageError(f"{path}: {line!r}: {e.message}") from None
    if not text.isascii() or re.search(r"\d", text) or "\n" in text:
        raise UsageError(f"{path}: {line!r}: phrasings must be one line of ASCII without digits")
    for var in _MUST.get(c, ()):
        if str(_SENTINELS[var]) not in text:
            raise UsageError(f"{path}: {line!r} must use {{{{ {var} }}}}")
    for var in _MUST_NOT.get(c, ()):
        if str(_SENTINELS[var]) in text:
            raise UsageError(f"{path}: {line!r} must not use {{{{ {var} }}}}")
    for var, allowed in _MAY.items():
        if var in t.uses and c not in allowed:
            raise UsageError(f"{path}: {line!r}: only {' and '.join(allowed)} phrasings may use {{{{ {var} }}}}")
    bare = re.sub(r"\w*sentinel", " ", text)
    said = set(words(bare))
    options = {w for f in t.fields for o in dom.phrases[f].tolist() for w in words(o)}
    for f in t.fields:
        if any(not o.isascii() or re.search(r"\d", o) for o in dom.phrases[f].tolist()):
            raise UsageError(f"{path}: {line!r}: the options of {f!r} must be ASCII without digits")
    # a field every option of which says it (a cue, a required word) counts as the line saying it
    def says(vocab: frozenset) -> bool:
        return bool(said & vocab) or any(all(set(words(o)) & vocab for o in dom.phrases[f].tolist()) for f in t.fields)

    if c in ("write", "overwrite") and not says(CUE_WORDS):
        raise UsageError(f"{path}: {line!r}: an explicit write needs a write-signal word "
                         f"such as Note, Update or Remember")
    if c == "silent_write" and (said | options) & CUE_WORDS:
        raise UsageError(f"{path}: {line!r}: a silent write must not use a write-signal word "
                         f"({', '.join(sorted((said | options) & CUE_WORDS))})")
    if c in _FACTS and (said | options) & HEDGE_WORDS:
        raise UsageError(f"{path}: {line!r}: a {c} states a fact plainly; hedged or hearsay wording "
                         f"({', '.join(sorted((said | options) & HEDGE_WORDS))}) belongs in unconfirmed.j2")
    if c in _NO_PRESUPPOSITION and said & PRESUPPOSING_WORDS:
        raise UsageError(f"{path}: {line!r}: a {c} may be about a {dom.thing_key} with no {dom.thing_value} yet, "
                         f"so it must not presuppose one ({', '.join(sorted(said & PRESUPPOSING_WORDS))})")
    if c in REQUIRED_WORDS and not says(REQUIRED_WORDS[c]):
        raise UsageError(f"{path}: {line!r}: a {c} distractor must say so with a word such as "
                         f"{', '.join(sorted(REQUIRED_WORDS[c])[:4])}")
    if c == "absent" and "unknown" not in said:
        raise UsageError(f"{path}: {line!r}: the absent phrasing must tell the reader to answer unknown")


def _check_lookalikes(dom: Domain, where: Path) -> None:
    for la in dom.keys.lookalikes:  # (mode edit, a misspelling, is refused by Space itself)
        if la.mode != "words":
            continue
        part = next(p for p in dom.keys.parts if p.name == la.part)
        for alt in la.alternatives:
            near = next((o for o in part.options if _edit_distance(alt.lower(), o.lower()) < 3), None)
            if near is not None:
                raise UsageError(f"{where}: lookalike word {alt!r} is a near-misspelling of {near!r} ({la.part}); "
                                 "use words that differ in at least three letters")


def _edit_distance(a: str, b: str) -> int:
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        prev = cur
    return prev[-1]


def key_surface(domain: str, key_id: int) -> str:
    """How key ``key_id`` is written in ``domain``; distinct ids give distinct surfaces."""
    return load_domain(domain).key_surface(key_id)


def lookalike_surface(domain: str, key_id: int, alias_id: int) -> str:
    """A look-alike of key ``key_id``'s surface: another entity (one word, letter or number of
    it differs), never the surface of any key of the domain."""
    return load_domain(domain).lookalike_surface(key_id, alias_id)


def value_surface(domain: str, value_id: int) -> str:
    """How value ``value_id`` is written in ``domain``; distinct ids give distinct surfaces."""
    return load_domain(domain).value_surface(value_id)
