"""Helpers for the scale and fault tests: folder digests and a generated request."""

from __future__ import annotations

import hashlib
from pathlib import Path

import psutil

from memgen.generators.knobs import Knobs
from memgen.pipeline.request import Request


def tree_digest(root: Path) -> dict[str, str]:
    """sha256 of every file under ``root``, keyed by its path relative to ``root``."""
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(Path(root).rglob("*")) if p.is_file()}


def tmp_files(root: Path) -> list[Path]:
    """Temporary files (a half-written shard, manifest or card) anywhere under ``root``."""
    return [p for p in Path(root).rglob("*") if ".tmp-" in p.name]


#: four configs (two families x two renderings), five shards each: enough to interleave workers
MULTI = Request(families=("overwrite", "mixed"), renderings=("token", "chunk"), lengths=(2048,),
                episodes=24, seed=11, shard_size=5, knobs=Knobs(queries=8))


def pool_processes(pid: int, server: bool = True) -> list[psutil.Process]:
    """The local pool workers under process ``pid`` (spawned, or forked from a fork server), and
    with ``server`` the fork server itself; never multiprocessing's resource tracker."""
    out = []
    for p in psutil.Process(pid).children(recursive=True):
        try:
            cmd = " ".join(p.cmdline())
            is_server = "forkserver" in cmd and p.ppid() == pid
        except psutil.Error:
            continue
        if ("spawn_main" in cmd or "forkserver" in cmd) and (server or not is_server):
            out.append(p)
    return out
