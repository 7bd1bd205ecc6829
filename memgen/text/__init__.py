"""The text rendering: episodes as natural language for real language models (docs/text.md).

Library API (the ``text`` rendering of ``memgen generate`` calls the same functions):

* :func:`render_text` -> :class:`TextRow`: context, prompt, questions, answer texts, spans and
  the real token count of one episode;
* :func:`load_tokenizer` -> :class:`LengthCounter`: ``cl100k``, ``o200k`` or a local
  Hugging Face ``tokenizer.json``, never the network;
* :func:`key_surface`, :func:`lookalike_surface`, :func:`value_surface`: how ids read in a
  domain (a function of the domain and the id only, so a scorer can map ids back to text);
* :func:`available_domains`, :func:`load_domain`: the template folders.
"""

from __future__ import annotations

from .domain import CUE_WORDS, Domain, available_domains, has_cue, load_domain
from .ordinals import ordinal
from .render import TextRow, render_text, tolerance
from .tokenizers import LengthCounter, load_tokenizer


def key_surface(domain: str, key_id: int) -> str:
    """How key ``key_id`` is written in ``domain``; distinct ids give distinct surfaces."""
    return load_domain(domain).key_surface(key_id)


def lookalike_surface(domain: str, key_id: int, alias_id: int) -> str:
    """A look-alike of key ``key_id``'s surface: one character or one word differs, and it is
    never the surface of any key of the domain."""
    return load_domain(domain).lookalike_surface(key_id, alias_id)


def value_surface(domain: str, value_id: int) -> str:
    """How value ``value_id`` is written in ``domain``; distinct ids give distinct surfaces."""
    return load_domain(domain).value_surface(value_id)


__all__ = [
    "CUE_WORDS", "Domain", "LengthCounter", "TextRow", "available_domains", "has_cue", "key_surface",
    "load_domain", "load_tokenizer", "lookalike_surface", "ordinal", "render_text", "tolerance",
    "value_surface",
]
