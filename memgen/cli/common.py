"""What every ``memgen`` command shares: the consoles, the one-line failure, comma lists, and
what the failures that come from outside memgen (the disk, a missing extra) say."""

from __future__ import annotations

import errno
import sys

from rich.console import Console

err = Console(stderr=True, highlight=False)
out = Console(highlight=False)


def _fail(message: str, code: int) -> None:
    from memgen.format.names import escaped

    # one line, whatever a name read from a file holds (line breaks, terminal escapes)
    message = escaped(" ".join(message.splitlines()))
    sys.stderr.write(f"memgen: error: {message}\n")
    sys.exit(code)


def _split_csv(values: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(v.strip() for raw in values for v in raw.split(",") if v.strip())


#: an optional module -> the extra of ``memgen-bench`` that installs it
EXTRAS = {"matplotlib": "plots", "datasets": "hub", "huggingface_hub": "hub", "torch": "models", "triton": "models",
          "lm_eval": "lmeval", "transformers": "lmeval", "ray": "ray", "sklearn": "select", "bm25s": "select",
          "safetensors": "bridge"}

#: what a failed write says, by errno, when the system's own words are not enough
_DISK = {errno.ENOSPC: "no space left on the device", errno.EDQUOT: "disk quota exceeded",
         errno.EFBIG: "file too large for this filesystem", errno.EROFS: "read-only filesystem"}


def outside_error(e: BaseException) -> tuple[str, int]:
    """The one line and exit code for an error from outside memgen that reached the command:
    a full or read-only disk, a file too large, a path that cannot be written (exit 1), or an
    optional dependency that is not installed (exit 2, naming the extra that installs it).
    Anything else is re-raised: it is a bug, and its traceback is wanted."""
    if isinstance(e, ModuleNotFoundError) and e.name:
        top = e.name.split(".")[0]
        if top in EXTRAS:
            return (f"this needs {top}, which is not installed: pip install 'memgen-bench[{EXTRAS[top]}]'", 2)
    if isinstance(e, OSError):
        why = _DISK.get(e.errno) or e.strerror or str(e)
        where = e.filename if isinstance(e.filename, str) else None
        return (f"{where}: {why}; nothing half-written was left" if where else
                f"cannot write: {why}; nothing half-written was left", 1)
    raise e
