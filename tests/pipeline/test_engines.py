"""Engines: the same bytes from any worker count and from Ray; results as they complete;
failures in workers reach the caller as one clear error; output to fsspec URLs."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
from functools import partial

import fsspec
import psutil
import pytest
from scale_helpers import MULTI, pool_processes, tmp_files, tree_digest

from memgen.format.errors import DataError, UsageError
from memgen.generators.registry import get_family
from memgen.pipeline.engines import check_engine, engine_session, map_tasks
from memgen.pipeline.job import generate
from memgen.pipeline.request import Request, tasks


@pytest.fixture(autouse=True)
def many_cores(monkeypatch):
    """Plan for 8 cores, so that ``workers=2`` or 4 start worker processes on a small machine too."""
    monkeypatch.setenv("MEMGEN_CORES", "8")


@pytest.fixture(scope="module")
def one_worker(tmp_path_factory):
    """The reference output: MULTI made in this process."""
    root = tmp_path_factory.mktemp("w1") / "ds"
    generate(MULTI, root, workers=1)
    return root


@pytest.mark.parametrize("workers", [2, 4])
def test_same_seed_same_bytes_any_worker_count(one_worker, tmp_path, workers):
    out = tmp_path / "ds"
    seen = []
    generate(MULTI, out, workers=workers, on_shard=lambda t, e: seen.append(t.path))
    assert tree_digest(out) == tree_digest(one_worker)  # every shard, the manifest and the card
    assert sorted(seen) == sorted(t.path for t in tasks(MULTI))
    assert not tmp_files(out)


def test_ray_engine_writes_the_same_bytes(one_worker, tmp_path, ray_cluster):
    out = tmp_path / "ds"
    manifest = generate(MULTI, out, engine="ray")
    assert tree_digest(out) == tree_digest(one_worker)
    assert manifest["status"] == "complete"
    assert not tmp_files(out)


def test_ray_map_tasks_reuses_the_connected_cluster(ray_cluster):
    got = dict(map_tasks(get_family, ["write", "overwrite"], workers=None, engine="ray"))
    assert set(got) == {"write", "overwrite"}
    assert ray_cluster.is_initialized()  # a cluster this call did not start is left running
    with pytest.raises(UsageError, match="unknown family"):
        list(map_tasks(get_family, ["write", "no-such-family"], engine="ray"))


def test_memory_url_holds_the_same_bytes_as_a_folder(one_worker):
    url = "memory://scale-test/ds"
    generate(MULTI, url)
    fs = fsspec.filesystem("memory")
    files = {p.split("/ds/", 1)[1]: fs.cat_file(p) for p in fs.find("/scale-test/ds")}
    assert set(files) == set(tree_digest(one_worker))
    for rel, data in files.items():
        assert data == (one_worker / rel).read_bytes(), rel
    fs.rm("/scale-test", recursive=True)


def test_file_url_is_a_local_folder(one_worker, tmp_path):
    generate(MULTI, f"file://{tmp_path}/ds", workers=2)
    assert tree_digest(tmp_path / "ds") == tree_digest(one_worker)


def test_memory_url_refuses_several_workers():
    with pytest.raises(UsageError, match="--workers 1"):
        generate(MULTI, "memory://scale-test/refused", workers=2)
    assert not fsspec.filesystem("memory").exists("/scale-test/refused")


def test_unknown_url_protocol_is_a_usage_error(tmp_path):
    with pytest.raises(UsageError, match="Protocol not known"):
        generate(MULTI, "nosuchfs://x/ds")


@pytest.fixture
def release():
    """An event shared with the pool's workers: a task ``release.wait(timeout)`` blocks until the
    test sets it (or ``timeout`` seconds pass: only a test that is failing waits that long)."""
    import multiprocessing

    with multiprocessing.Manager() as manager:
        yield manager.Event()


def test_results_arrive_as_they_complete(release):
    # the slow item is first in and blocks until the caller holds the other three: a progress
    # bar moves while it runs.  Yielding in submission order would return it first, timed out.
    got = []
    for item, released in map_tasks(release.wait, [60.0, 0.0, 0.0, 0.0], workers=2):
        got.append((item, released))
        if len(got) == 3:
            release.set()
    assert got == [(0.0, False)] * 3 + [(60.0, True)]


def test_a_usage_error_in_a_worker_reaches_the_caller_as_itself():
    with pytest.raises(UsageError, match="unknown family 'nope'"):
        list(map_tasks(get_family, ["write", "nope", "overwrite"], workers=2))


def test_a_dead_worker_is_a_data_error():
    with pytest.raises(DataError, match="worker process died"):
        list(map_tasks(os._exit, [3, 3], workers=2))


def test_closing_early_stops_the_workers(release):
    # two tasks block until released; closing the iterator must kill them, not wait for them
    it = map_tasks(release.wait, [0.0, None, None], workers=2)
    assert next(it) == (0.0, False)
    workers = pool_processes(os.getpid(), server=False)  # the server outlives a pool
    assert workers
    watchdog = threading.Timer(60, release.set)  # frees a close() that waits, so the test fails, not hangs
    watchdog.start()
    try:
        it.close()
        assert not release.is_set(), "close() returned only once the running tasks were released"
    finally:
        watchdog.cancel()
    gone, alive = psutil.wait_procs(workers, timeout=10)
    assert not alive


def test_workers_die_with_their_parent(tmp_path):
    # kill -9 of the parent must not leave orphans still writing into the output folder
    code = ("import time; from memgen.pipeline.engines import map_tasks\n"
            "for _ in map_tasks(time.sleep, [0.0, 60.0, 60.0], workers=2): print('up', flush=True)\n")
    p = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert p.stdout.readline().strip() == "up"
        kids = pool_processes(p.pid)
        assert kids
        p.kill()
        p.wait(10)
        gone, alive = psutil.wait_procs(kids, timeout=10)
        assert not alive
    finally:
        p.kill()


@pytest.mark.parametrize("engine, workers, address, words", [
    ("spark", None, None, "choose from local, ray"),
    ("local", 0, None, "--workers 0"),
    ("local", -3, None, "--workers -3"),
    ("local", 2, "127.0.0.1:6379", "--address names a Ray cluster"),
])
def test_engine_arguments_are_checked(engine, workers, address, words):
    with pytest.raises(UsageError, match=words):
        check_engine(engine, workers, address)


def test_missing_ray_is_a_usage_error_that_writes_nothing(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError
    with pytest.raises(UsageError, match=r"memgen-bench\[ray\]"):
        generate(MULTI, tmp_path / "ds", engine="ray")
    assert not (tmp_path / "ds").exists()


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_unreachable_ray_address_is_a_usage_error_that_writes_nothing(tmp_path):
    pytest.importorskip("ray")
    address = f"127.0.0.1:{_closed_port()}"
    with pytest.raises(UsageError, match="no Ray cluster answers"):
        generate(MULTI, tmp_path / "ds", engine="ray", address=address)
    assert not (tmp_path / "ds").exists()
    with pytest.raises(UsageError, match="host:port"):
        with engine_session("ray", None, "not-an-address"):
            pass


def test_checkpoints_record_finished_shards(tmp_path, monkeypatch):
    import json

    from memgen.pipeline import job

    monkeypatch.setattr(job, "CHECKPOINT_S", 0.0)  # checkpoint after every shard
    seen: list[int] = []
    root = tmp_path / "ds"

    def count(task, entry):
        m = json.loads((root / "manifest.json").read_text())
        seen.append(sum(len(c["shards"]) for c in m["configs"].values()))

    generate(Request(families=("write",), lengths=(1024,), episodes=6, shard_size=2), root, on_shard=partial(count))
    assert seen == [0, 1, 2]  # the manifest on disk trails the finished shards by at most one


def test_text_rendering_same_bytes_with_workers(tmp_path):
    req = Request(families=("mixed",), renderings=("text",), lengths=(2048,), episodes=9, seed=3, shard_size=3)
    generate(req, tmp_path / "one")
    generate(req, tmp_path / "two", workers=2)
    assert tree_digest(tmp_path / "two") == tree_digest(tmp_path / "one")
