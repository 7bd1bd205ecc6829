"""Baseline models: ``oracle``, ``fixed_state`` and ``sparse`` (mechanism tier)."""
