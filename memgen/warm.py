"""Importing this module loads the compiled twins (:mod:`memgen.jit`) into the process.

The local workers' fork server imports it (with :mod:`memgen.pipeline`), so every worker it
forks starts with numba imported and the kernels loaded, instead of paying that load (about
half a second) on its first large batch.  A no-op where the twins are off.
"""

from __future__ import annotations

from .pipeline import warm_kernels

warm_kernels()
