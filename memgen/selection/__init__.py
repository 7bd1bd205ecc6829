"""Query-time selection, measured per failure mode (docs/selection.md): selectors registered by
name (:mod:`.registry`), what they read (:mod:`.episodes`), how they are scored (:mod:`.metrics`,
:mod:`.evaluate`, :mod:`.report`), and selected-context prompts for LLMs (:mod:`.contexts`)."""

# registers the built-in selectors, in the order they are listed
from memgen.selection import selectors  # noqa: F401, I001
from memgen.selection import dense, mechanism  # noqa: F401
