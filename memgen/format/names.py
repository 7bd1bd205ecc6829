"""Names on disk: a config is ``<family>-<rendering>-<length>``; a shard is
``<split>-NNNNN-of-NNNNN.arrow`` under ``data/<config>/``."""

from __future__ import annotations

import re

SHARD_RE = re.compile(r"^(?P<split>[A-Za-z0-9_]+)-(?P<i>\d{5})-of-(?P<n>\d{5})\.arrow$")


def shard_name(split: str, i: int, n: int) -> str:
    return f"{split}-{i:05d}-of-{n:05d}.arrow"


def config_name(family: str, rendering: str, length: int) -> str:
    return f"{family}-{rendering}-{length}"
