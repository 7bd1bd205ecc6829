"""The progress bar every long command shows on stderr (only on a terminal: piped or captured
stderr stays clean, so an error there is still one line)."""

from __future__ import annotations

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

err = Console(stderr=True, highlight=False)


def progress_bar(unit: str) -> Progress:
    """A transient bar: description, bar, ``n/total <unit>``, elapsed time."""
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn(unit),
                    TimeElapsedColumn(), console=err, transient=True, disable=not err.is_terminal)
