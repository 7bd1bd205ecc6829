"""The text rendering: episodes as natural language for real language models (docs/text.md).

* :mod:`~memgen.render.text.rendering`: the ``text`` rendering of a batch (what ``memgen generate``
  calls);
* :mod:`~memgen.render.text.episode`: :func:`render_text`, one episode as context, prompt,
  questions, answer texts and spans, counted with a real tokenizer;
* :mod:`~memgen.render.text.domain`: the template folders (``available_domains``,
  ``load_domain``) and how ids read in a domain (``key_surface``, ``value_surface``, ...);
* :mod:`~memgen.render.text.surfaces`, :mod:`~memgen.render.text.filler`,
  :mod:`~memgen.render.text.ordinals`: surface forms, filler prose, ordinal words;
* :mod:`~memgen.render.text.tokenizers`: ``cl100k``, ``o200k`` or a local ``tokenizer.json``,
  never the network.
"""
