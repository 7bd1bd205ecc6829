"""The kernel tests: each Triton kernel against its plain PyTorch twin, forward and backward.

Without a GPU the kernels run in Triton's interpreter, which must be on before the kernel
modules are imported: this file turns it on at collection.  The dispatch imports the kernel
modules on first use only, and the rest of the suite runs the references on the CPU, so the
setting changes nothing outside this folder.  Without triton the folder is skipped."""

from __future__ import annotations

import importlib.util
import math
import os

import pytest
import torch

HAS_TRITON = importlib.util.find_spec("triton") is not None
if not HAS_TRITON:
    collect_ignore_glob = ["test_*.py"]
elif not torch.cuda.is_available():
    os.environ["TRITON_INTERPRET"] = "1"


def pytest_configure(config):
    config.addinivalue_line("markers", "gpu: needs a CUDA device (fp16 / bf16, large shapes); skipped without one")


def pytest_collection_modifyitems(config, items):
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA device")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(autouse=True)
def poisoned_empty(monkeypatch):
    """``torch.empty`` gives NaN (floats) or 77 (integers), as fla's tests do: a kernel that
    leaves part of an output unwritten fails its comparison instead of passing by luck."""
    real = torch.empty

    def empty(*size, **kw):
        x = real(*size, **kw)
        if x.dtype == torch.bool:
            return x.fill_(True)
        return x.fill_(math.nan if x.is_floating_point() else 77)

    monkeypatch.setattr(torch, "empty", empty)
    torch.set_num_threads(1)
    yield


@pytest.fixture
def kernels_on(monkeypatch):
    """The dispatch runs the Triton kernels (interpreted on the CPU)."""
    monkeypatch.setenv("MEMGEN_TRITON", "1")

