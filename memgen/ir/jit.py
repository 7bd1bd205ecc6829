"""Compiled twins of hot numpy paths, with numba, when it is there: the one mechanism.

Each twin is a plain Python function beside the numpy code it replaces (``memgen.ir.replay_kernel``,
``memgen.render.token_kernel``, ``memgen.render.layout``, ``memgen.generators.build``, the draws of
``memgen.ir.rng``), declared with :func:`kernel`; tests check that both give the same bytes.
numba is imported on the first compiled call only (about 0.4 s), so commands that never make a
large batch never pay for it; compiled code is cached on disk, so compiling (a few seconds)
happens once per machine.  ``MEMGEN_KERNELS=0`` turns every twin off.

A kernel may call other kernels (helpers) by their module-level names: when the caller is
compiled, the kernels it names are compiled first and the caller is compiled against them
(the module's globals are not touched).  Keep a kernel's helpers in its module: numba checks
a cached kernel against its own source file only.  A helper declared ``kernel(inline=True)``
is inlined into its callers by numba (``inline="always"``): right for helpers that take only
scalars, or that run once per outer step; numba counts references to every array it hands to
an inlined helper, on every call, so a small helper called in a hot loop with arrays is better
a plain kernel (LLVM inlines those calls; ``memgen.ir.replay_kernel`` measured both).
"""

from __future__ import annotations

import contextlib
import functools
import importlib.util
import os
import threading
import types
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


class Kernel:
    """A plain Python function that runs compiled: ``numba.njit(cache=True, nogil=True)`` of it,
    made on the first call (under :data:`LOCK`, so once per process).  ``py_func`` is the plain
    function (readable, and callable without numba for debugging)."""

    def __init__(self, fn: Callable, inline: bool = False):
        functools.update_wrapper(self, fn)
        self.py_func = fn
        self.inline = inline
        self._compiled = None

    def __call__(self, *args):
        compiled = self._compiled
        if compiled is None:
            with LOCK:
                compiled = self._compile()
        return compiled(*args)

    def _compile(self):
        """The numba dispatcher (the caller holds ``LOCK``).  The kernels that ``py_func`` names as
        globals are compiled first, and ``py_func`` is compiled against a copy of its module's
        globals in which those names are their dispatchers (the module itself is not touched)."""
        if self._compiled is None:
            import numba

            fn = self.py_func
            helpers = {name: value._compile() for name in fn.__code__.co_names
                       if isinstance(value := fn.__globals__.get(name), Kernel)}
            if helpers:
                fn = types.FunctionType(fn.__code__, {**fn.__globals__, **helpers}, fn.__name__,
                                        fn.__defaults__, fn.__closure__)
                fn.__qualname__, fn.__doc__ = self.py_func.__qualname__, self.py_func.__doc__
            options = {"inline": "always"} if self.inline else {}
            self._compiled = numba.njit(cache=True, nogil=True, **options)(fn)
        return self._compiled


def kernel(fn: Callable | None = None, *, inline: bool = False) -> Kernel | Callable[[Callable], Kernel]:
    """Declare a compiled twin (or a helper of one): ``@kernel`` or ``@kernel(inline=True)``.
    The function is compiled with ``numba.njit(cache=True, nogil=True)`` on its first call (or
    when the first kernel that calls it is compiled); ``inline=True`` inlines it into the kernels
    that call it."""
    if fn is None:
        return lambda f: Kernel(f, inline)
    return Kernel(fn, inline)
