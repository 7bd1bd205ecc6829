"""Compiled twins of hot numpy paths, with numba, when it is there.

Each twin is a plain Python function beside the numpy code it replaces (``memgen.ir.replay_kernel``,
``memgen.render.token_kernel``, the draws of ``memgen.ir.rng``); tests check that both give the
same bytes.  numba is imported on the first compiled call only (about 0.4 s), so commands that
never make a large batch never pay for it; compiled code is cached on disk, so compiling (a
few seconds) happens once per machine.  ``MEMGEN_KERNELS=0`` turns every twin off.
"""

from __future__ import annotations

import contextlib
import functools
import importlib.util
import os
import threading
from collections.abc import Callable, Iterator

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


def pays(n: int) -> bool:
    """Whether a batch of ``n`` elements takes the compiled twin: at least ``MIN_ITEMS`` of them,
    and the twins on."""
    return n >= MIN_ITEMS and available()


@contextlib.contextmanager
def everywhere() -> Iterator[None]:
    """Within the block every batch takes the compiled twins, whatever its size (to load them
    all with a small job).  Not thread-safe: ``MIN_ITEMS`` is module state."""
    global MIN_ITEMS
    threshold, MIN_ITEMS = MIN_ITEMS, 0
    try:
        yield
    finally:
        MIN_ITEMS = threshold


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

    return call
