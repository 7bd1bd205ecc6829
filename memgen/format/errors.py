"""Errors that reach the user as one line and an exit code (DESIGN.md section 9)."""

from __future__ import annotations


class MemgenError(Exception):
    """A problem the user can fix.  ``exit_code`` is 2 for usage, 1 for data."""

    exit_code = 1

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class UsageError(MemgenError):
    """Bad arguments: unknown names, impossible configs, unwritable paths."""

    exit_code = 2


class DataError(MemgenError):
    """Bad files: malformed predictions, corrupted shards, datasets that fail verification."""

    exit_code = 1
