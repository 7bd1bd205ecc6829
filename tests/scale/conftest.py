"""Fixtures for the scale tests: one real local Ray cluster shared by the tests that need it."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def ray_cluster():
    """A local Ray cluster with 2 CPUs (``ray.init(num_cpus=2)``), shut down after the session."""
    ray = pytest.importorskip("ray", reason="Ray is an optional extra: pip install 'memgen[ray]'")
    ray.init(num_cpus=2, include_dashboard=False, configure_logging=False, logging_level="WARNING")
    yield ray
    ray.shutdown()
