"""A memgen dataset folder on disk: shards, manifest, card; atomic writes; verification.

Layout (a Hugging Face dataset repo as it stands)::

    DIR/README.md                                   dataset card, YAML ``configs:``
    DIR/manifest.json                               versions, full config, vocab, sha256s
    DIR/data/<config>/<split>-NNNNN-of-NNNNN.arrow  Arrow IPC file shards

Every file is written under a temporary name in the same folder and renamed into place, so an
interrupted run leaves complete files only; re-running the same command skips the shards that
exist and produces the same bytes.
"""

from __future__ import annotations

import re

SHARD_RE = re.compile(r"^(?P<split>[A-Za-z0-9_]+)-(?P<i>\d{5})-of-(?P<n>\d{5})\.arrow$")


def shard_name(split: str, i: int, n: int) -> str:
    return f"{split}-{i:05d}-of-{n:05d}.arrow"


def config_name(family: str, rendering: str, length: int) -> str:
    return f"{family}-{rendering}-{length}"
