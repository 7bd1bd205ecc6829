"""``python -m memgen.cli``: the ``memgen`` command."""

from memgen.cli import main

main()
