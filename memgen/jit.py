"""Compiled twins of hot numpy paths, with numba, when it is there.

Each twin is a plain Python function beside the numpy code it replaces (``memgen.ir_kernel``,
``memgen.render.tokens_kernel``, the draws of ``memgen.rng``); tests check that both give the
same bytes.  numba is imported on the first compiled call only (about 0.4 s), so commands that
never make a large batch never pay for it; compiled code is cached on disk, so compiling (a
few seconds) happens once per machine.  ``MEMGEN_KERNELS=0`` turns every twin off.
"""

from __future__ import annotations

import functools
import importlib.util
import os
import threading
from collections.abc import Callable

#: batches with fewer elements than this stay on the numpy path (nothing to gain, and a small
#: command should not import numba)
MIN_ITEMS = 1 << 12
#: held while a kernel is compiled or loaded, so that threads never compile one twice
LOCK = threading.Lock()


@functools.cache
def available() -> bool:
    """numba is installed and not turned off with ``MEMGEN_KERNELS=0`` (read once, at the first
    call).  Imports nothing."""
    return os.environ.get("MEMGEN_KERNELS", "1") != "0" and importlib.util.find_spec("numba") is not None


def kernel(fn: Callable) -> Callable:
    """``fn`` compiled with ``numba.njit(cache=True, nogil=True)`` on its first call."""
    compiled = None

    @functools.wraps(fn)
    def call(*args):
        nonlocal compiled
        if compiled is None:
            with LOCK:
                if compiled is None:
                    import numba

                    compiled = numba.njit(cache=True, nogil=True)(fn)
        return compiled(*args)

    call.py_func = fn
    return call
