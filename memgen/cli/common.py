"""What every ``memgen`` command shares: the consoles, the one-line failure, comma lists."""

from __future__ import annotations

import sys

from rich.console import Console

err = Console(stderr=True, highlight=False)
out = Console(highlight=False)


def _fail(message: str, code: int) -> None:
    message = " ".join(message.splitlines())  # one line, whatever the user typed into a name
    sys.stderr.write(f"memgen: error: {message}\n")
    sys.exit(code)


def _split_csv(values: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(v.strip() for raw in values for v in raw.split(",") if v.strip())
