"""Crash-resume: ``kill -9`` of a running ``memgen generate`` at several points, then the same
command again, gives the bytes of an uninterrupted run; a folder changed by hand fails verify."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
from scale_helpers import pool_processes, tmp_files, tree_digest

#: 40 shards of 24 episodes at 16K tokens: about 2 s with 2 workers, ~40 ms a shard
COMMAND = [sys.executable, "-m", "memgen.cli", "generate", "--family", "mixed", "--length", "16384",
           "--episodes", "960", "--shard-size", "24", "--seed", "5", "--workers", "2", "--quiet"]
SHARDS = 40
#: plan for 4 cores, so that --workers 2 starts two worker processes on a 2-core machine too
ENV = {**os.environ, "MEMGEN_CORES": "4"}


def _generate(out: Path) -> subprocess.CompletedProcess:
    return subprocess.run([*COMMAND, "--out", str(out)], capture_output=True, text=True, timeout=300, env=ENV)


def _shards(out: Path) -> list[Path]:
    folder = out / "data" / "mixed-token-16384"
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.name.endswith(".parquet") and ".tmp-" not in p.name)


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("ref") / "ds"
    p = _generate(out)
    assert p.returncode == 0, p.stderr
    assert len(_shards(out)) == SHARDS
    return out


def _kill_at(out: Path, shards: int) -> int:
    """Start the command, SIGKILL it once ``shards`` shards are on disk (0: once the folder
    is prepared, before any shard), check that its workers died with it; returns the shards seen."""
    p = subprocess.Popen([*COMMAND, "--out", str(out)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=ENV)
    try:
        deadline = time.monotonic() + 120
        while True:
            seen = len(_shards(out))
            if (seen >= shards > 0) or (shards == 0 and (out / "manifest.json").exists()):
                break
            assert p.poll() is None, f"finished before the kill point: {p.stderr.read()}"
            assert time.monotonic() < deadline
            time.sleep(0.005)
        workers = pool_processes(p.pid)
        assert workers or shards == 0
        os.kill(p.pid, signal.SIGKILL)
        p.wait(30)
    finally:
        p.kill()
    _, alive = psutil.wait_procs(workers, timeout=10)
    assert not alive, "a worker outlived its killed parent"
    return seen


@pytest.mark.slow
@pytest.mark.parametrize("point, shards", [("before any shard", 0), ("after some shards", 6),
                                           ("after most shards", 34)])
def test_sigkill_then_the_same_command_gives_the_same_bytes(reference, tmp_path, point, shards):
    out = tmp_path / "ds"
    seen = _kill_at(out, shards)
    assert (seen == 0) if shards == 0 else (shards <= seen < SHARDS)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["status"] == "incomplete"
    check = subprocess.run([sys.executable, "-m", "memgen.cli", "verify", str(out)], capture_output=True, text=True)
    assert check.returncode == 1 and "did not finish" in check.stderr

    recorded = [s["path"] for c in manifest["configs"].values() for s in c["shards"]]
    if recorded:  # a shard the killed run recorded, changed before the re-run: rebuilt, not trusted
        victim = out / recorded[0]
        data = bytearray(victim.read_bytes())
        data[len(data) // 2] ^= 0xFF
        victim.write_bytes(bytes(data))
    # what a kill in the middle of a write leaves behind
    (out / "data" / ".stale.parquet.tmp-99999").parent.mkdir(parents=True, exist_ok=True)
    (out / "data" / ".stale.parquet.tmp-99999").write_bytes(b"half a shard")

    p = _generate(out)
    assert p.returncode == 0, p.stderr
    assert tree_digest(out) == tree_digest(reference)
    assert not tmp_files(out)


@pytest.mark.slow
def test_killed_twice_then_finished(reference, tmp_path):
    out = tmp_path / "ds"
    _kill_at(out, 4)
    _kill_at(out, 30)
    assert _generate(out).returncode == 0
    assert tree_digest(out) == tree_digest(reference)


def _flip_a_byte(root: Path, shard: Path) -> str:
    data = bytearray(shard.read_bytes())
    data[len(data) // 3] ^= 0x01
    shard.write_bytes(bytes(data))
    return str(shard.relative_to(root))


def _add_a_file(root: Path, shard: Path) -> str:
    extra = shard.with_name("test-00099-of-00099.parquet")
    shutil.copy(shard, extra)
    return str(extra.relative_to(root))


def _delete_a_shard(root: Path, shard: Path) -> str:
    shard.unlink()
    return str(shard.relative_to(root))


def _truncate_a_shard(root: Path, shard: Path) -> str:
    shard.write_bytes(shard.read_bytes()[:-100])
    return str(shard.relative_to(root))


@pytest.mark.slow
@pytest.mark.parametrize("change", [_flip_a_byte, _add_a_file, _delete_a_shard, _truncate_a_shard])
def test_a_folder_changed_by_hand_fails_verify_naming_the_shard(reference, tmp_path, change):
    root = tmp_path / "ds"
    shutil.copytree(reference, root)
    named = change(root, _shards(root)[7])
    p = subprocess.run([sys.executable, "-m", "memgen.cli", "verify", str(root)], capture_output=True, text=True)
    assert p.returncode == 1
    lines = p.stderr.strip().splitlines()
    assert lines[-1].startswith("memgen: error:") and all(x.startswith("memgen: bad:") for x in lines[:-1])
    assert named in p.stderr
    assert "Traceback" not in p.stderr
