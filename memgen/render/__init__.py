"""Renderings, registered by name (:mod:`memgen.render.registry`): a rendering turns a replayed
batch of episodes into an Arrow table with the common columns and its own
(:mod:`memgen.format.schema`).  ``token``, ``chunk`` and ``bridge`` live in
:mod:`memgen.render.token`; ``text`` in :mod:`memgen.render.text`.
"""

from memgen.render import token  # noqa: F401  (registers token, chunk, bridge)
from memgen.render.text import rendering  # noqa: F401  (registers text)
