"""Where independent tasks run: in this process, in local worker processes, or on a Ray cluster.

:func:`map_tasks` is the one entry point: ``generate`` maps shard tasks through it, and any other
embarrassingly parallel step (``memgen eval`` over the shards of a dataset) can do the same.
Results come back *as they complete*, so a progress bar moves with the work; a caller that
needs a fixed order keys the results by their item (as the manifest does by shard path), which
is why the output bytes never depend on the engine or the worker count.

Local workers are forked from a *fork server* (where the platform has one, else spawned): a
small clean process that imported the task's module once, so starting a worker costs
milliseconds rather than an interpreter start and imports, and a worker's memory is that of the
one task it runs (one shard), not a copy of the caller's (which may hold a progress bar's
thread, a big table, a Ray connection).  On Linux a worker dies with its parent
(``PR_SET_PDEATHSIG``; the fork server exits when the caller does), so a ``kill -9`` of
``memgen generate`` leaves no orphan still writing into the output folder.

Ray is an optional extra (``pip install 'memgen-bench[ray]'``) and is imported only when asked for.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from memgen.format.errors import DataError, MemgenError, UsageError

T = TypeVar("T")
R = TypeVar("R")

ENGINES = ("local", "ray")
#: how local workers start (see the module docstring)
START_METHOD = "forkserver" if sys.platform.startswith("linux") else "spawn"


def available_cores() -> int:
    """The CPU cores this process may run on: its affinity mask (a container's or ``taskset``'s
    limit, not the machine's count), or ``$MEMGEN_CORES`` where set (a machine shared with other
    jobs; the tests, to run several workers on a small machine)."""
    env = os.environ.get("MEMGEN_CORES", "")
    if env.strip():
        if not env.strip().isdigit() or not 1 <= int(env) <= 4096:
            raise UsageError(f"MEMGEN_CORES={env[:20]!r}: give a number of cores, 1 to 4096")
        return int(env)
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


@dataclass(frozen=True)
class WorkerPlan:
    """How a local job runs: ``processes`` worker processes (1: this process), each building
    blocks while ``writer_thread`` encodes, hashes and writes them."""

    processes: int
    writer_thread: bool
    cores: int

    def describe(self, asked: int | None) -> str:
        who = "this process" if self.processes == 1 else f"{self.processes} worker processes"
        how = ", each with a writer thread" if self.writer_thread and self.processes > 1 else (
            " with a writer thread" if self.writer_thread else ", no writer thread")
        why = f"--workers {asked}, " if asked is not None else ""
        return f"shards made by {who}{how} ({why}{self.cores} cores available)"


#: cores one worker keeps busy: it builds blocks while its writer thread compresses and writes them
CORES_PER_WORKER = 2


def size_workers(workers: int | None, tasks: int, cores: int | None = None, writer_thread: bool = True) -> WorkerPlan:
    """The :class:`WorkerPlan` for ``workers`` asked and ``tasks`` shards on ``cores`` (default:
    :func:`available_cores`).  A worker with its writer thread already keeps
    :data:`CORES_PER_WORKER` cores busy, so more processes than ``cores // 2`` only compete for
    the same cores (on 2 cores, 2 processes ran at 0.84x of one), and more than ``tasks`` have
    nothing to do; on one core the writer thread is dropped too.  The bytes never depend on it."""
    cores = cores or available_cores()
    feed = max(1, cores // CORES_PER_WORKER)
    processes = max(1, min(workers or 1, feed, tasks))
    return WorkerPlan(processes, writer_thread and cores >= 2, cores)


def check_engine(engine: str, workers: int | None = None, address: str | None = None) -> None:
    """Raise UsageError for an engine, worker count or address that cannot run (before any work).

    For ``ray`` this imports Ray, so a missing install is reported here, not mid-run."""
    if engine not in ENGINES:
        raise UsageError(f"--engine {engine!r}: choose from {', '.join(ENGINES)}")
    if workers is not None and workers < 1:
        raise UsageError(f"--workers {workers}: use at least 1")
    if address is not None and engine != "ray":
        raise UsageError("--address names a Ray cluster: use it with --engine ray")
    if engine == "ray":
        _import_ray()
        if address is not None:
            _check_reachable(address)


def map_tasks(fn: Callable[[T], R], items: Sequence[T], workers: int | None = 1, engine: str = "local",
              address: str | None = None, init: Callable[[], None] | None = None) -> Iterator[tuple[T, R]]:
    """Yield ``(item, fn(item))`` for every item, in order of completion.

    ``fn`` and the items must pickle (a module-level function, or a ``functools.partial`` of one).
    ``engine="local"``: ``workers`` processes (``None`` or 1: this process, no pool); while they
    start (about half a second), this process runs tasks itself.
    ``engine="ray"``: tasks on the Ray cluster at ``address`` (``None``: the one this process is
    connected to, else a new local one with ``workers`` CPUs); ``workers`` caps the tasks in
    flight (``None``: the cluster's CPUs).  A :class:`MemgenError` raised by ``fn`` reaches the
    caller as itself; a worker that dies becomes a DataError.  Closing the iterator early (an
    error, Ctrl-C) cancels the tasks not yet finished.  ``init`` (a module-level function) runs
    once in each local worker before its first task (e.g. to load compiled kernels)."""
    check_engine(engine, workers, address)
    if engine == "ray":
        yield from _map_ray(fn, items, workers, address)
    elif workers is None or workers <= 1 or len(items) <= 1:
        for item in items:
            yield item, fn(item)
    else:
        yield from _map_local(fn, items, workers, init)


def _worker_init(caller: int, init: Callable[[], None] | None = None) -> None:
    """In each local worker: leave Ctrl-C to the caller, die with the caller process, then run
    ``init``.

    A forked-from-server worker's parent is the fork server, which outlives a killed caller (its
    workers hold the server's lifeline open), so a watchdog thread waits for the caller itself."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if sys.platform.startswith("linux"):
        import ctypes

        try:
            ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
        except (OSError, AttributeError):
            pass
    import threading

    threading.Thread(target=_die_with, args=(caller,), name="memgen-die-with-caller", daemon=True).start()
    if init is not None:
        init()


def _die_with(pid: int) -> None:
    """Block until process ``pid`` exits, then kill this process at once."""
    import select
    import time

    try:
        fd = os.pidfd_open(pid)  # Linux >= 5.3: readable when the process exits
    except (AttributeError, OSError):
        fd = None
    if fd is not None:
        select.select([fd], [], [])
    else:
        while True:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                break
            except PermissionError:
                pass
            time.sleep(0.5)
    os.kill(os.getpid(), signal.SIGKILL)


def _context(module: str | None = None) -> Any:
    """The multiprocessing context for workers whose tasks live in ``module``."""
    import multiprocessing as mp

    ctx = mp.get_context(START_METHOD)
    if START_METHOD == "forkserver":
        # imported once by the server, inherited by every worker; no effect once the server runs
        extra = [module] if module and module not in ("__main__", "memgen.pipeline.job") else []
        ctx.set_forkserver_preload(["memgen.pipeline.job", *extra])
    return ctx


def prestart(engine: str = "local", workers: int | None = 1, module: str = "memgen.pipeline.job") -> None:
    """Start the local workers' fork server now, so that its imports (about half a second) run
    while the caller does its own; a no-op unless ``engine`` is local with several workers.
    Safe to call more than once; :func:`map_tasks` starts the server itself when needed."""
    if engine != "local" or workers is None or workers <= 1 or START_METHOD != "forkserver":
        return
    from multiprocessing import forkserver

    _context(module)
    forkserver.ensure_running()


def _map_local(fn: Callable[[T], R], items: Sequence[T], workers: int,
               init: Callable[[], None] | None = None) -> Iterator[tuple[T, R]]:
    import itertools
    import threading
    from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
    from concurrent.futures.process import BrokenProcessPool

    n = min(workers, len(items))
    module = getattr(getattr(fn, "func", fn), "__module__", None)
    pool = ProcessPoolExecutor(max_workers=n, mp_context=_context(module), initializer=_worker_init,
                               initargs=(os.getpid(), init))
    todo = iter(items)
    # a short queue (two tasks a worker): cancelling stays cheap and memory stays flat
    first = list(itertools.islice(todo, 2 * n))
    pending: dict[Future, T] = {}
    started: list[BaseException] = []

    def start() -> None:  # blocks until the workers exist (the fork server's imports: ~0.5 s)
        try:
            for item in first:
                pending[pool.submit(fn, item)] = item
        except BaseException as e:  # noqa: BLE001 - handed to the caller below
            started.append(e)

    starter = threading.Thread(target=start, name="memgen-start-workers", daemon=True)
    done_all = False
    try:
        starter.start()
        while starter.is_alive():  # meanwhile this process makes results itself
            item = next(todo, _END)
            if item is _END:
                break
            yield item, fn(item)
        starter.join()
        if started:
            raise started[0]
        while pending:
            finished, _ = wait(pending, return_when=FIRST_COMPLETED)
            for fut in finished:
                item = pending.pop(fut)
                try:
                    result = fut.result()
                except BrokenProcessPool:
                    raise DataError("a worker process died (killed, or out of memory?); "
                                    "re-run the same command to resume") from None
                nxt = next(todo, _END)
                if nxt is not _END:
                    pending[pool.submit(fn, nxt)] = nxt
                yield item, result
        done_all = True
    finally:
        if done_all:
            pool.shutdown(wait=True)
        else:
            _stop_pool(pool)


_END: Any = object()


def _stop_pool(pool: Any) -> None:
    """Cancel queued tasks and kill running workers now (their temporaries are removed on resume)."""
    terminate = getattr(pool, "terminate_workers", None)  # Python >= 3.14
    if terminate is not None:
        terminate()
        return
    procs = list((getattr(pool, "_processes", None) or {}).values())  # shutdown() forgets them
    pool.shutdown(wait=False, cancel_futures=True)
    for proc in procs:
        proc.kill()
    for proc in procs:
        proc.join(timeout=5)


# -- Ray ---------------------------------------------------------------------------------------


def _import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise UsageError("--engine ray needs Ray: pip install 'memgen-bench[ray]'") from None
    return ray


def _check_reachable(address: str, timeout: float = 5.0) -> None:
    """UsageError unless ``host:port`` (or ``ray://host:port``) accepts a TCP connection: Ray itself
    retries an unreachable address for minutes."""
    import socket

    if address in ("auto", "local"):
        return
    hostport = address.split("://", 1)[-1].rstrip("/")
    host, sep, port = hostport.rpartition(":")
    if not sep or not port.isdigit():
        raise UsageError(f"--address {address}: use host:port (or ray://host:port, or auto)")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout).close()
    except (OSError, ValueError, OverflowError) as e:
        raise UsageError(f"--address {address}: no Ray cluster answers there ({e})") from None


def _call(fn: Callable[[T], R], item: T) -> R:
    return fn(item)


@contextlib.contextmanager
def engine_session(engine: str = "local", workers: int | None = None, address: str | None = None) -> Iterator[None]:
    """Hold the engine open for a block: for ``ray``, connect to the cluster at ``address`` (or
    start a local one with ``workers`` CPUs) unless this process is already connected, and
    disconnect on exit if this call connected.  Nothing for ``local``.

    ``generate`` enters it before writing anything, so a cluster that cannot be reached is a
    UsageError that leaves the output folder untouched; :func:`map_tasks` calls inside it reuse
    the connection."""
    check_engine(engine, workers, address)
    if engine != "ray":
        yield
        return
    ray = _import_ray()
    if ray.is_initialized():
        yield
        return
    kwargs: dict[str, Any] = {"include_dashboard": False, "logging_level": logging.WARNING,
                              "configure_logging": False}
    if address is None and workers is not None:
        kwargs["num_cpus"] = workers
    try:
        ray.init(address=address, **kwargs)
    except (ConnectionError, RuntimeError, ValueError) as e:
        where = f"--address {address}" if address else "a local Ray cluster"
        why = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise UsageError(f"{where}: cannot connect ({why})") from None
    try:
        yield
    finally:
        ray.shutdown()


def _map_ray(fn: Callable[[T], R], items: Sequence[T], workers: int | None,
             address: str | None) -> Iterator[tuple[T, R]]:
    ray = _import_ray()
    with engine_session("ray", workers, address):
        yield from _ray_tasks(ray, fn, items, workers)


def _ray_tasks(ray: Any, fn: Callable[[T], R], items: Sequence[T], workers: int | None) -> Iterator[tuple[T, R]]:
    pending: dict[Any, T] = {}
    done_all = False
    try:
        slots = workers or max(1, int(ray.cluster_resources().get("CPU", 1)))
        remote = ray.remote(num_cpus=1)(_call)
        fn_ref = ray.put(fn)  # shipped once, not once per task
        todo = iter(items)
        for item in todo:
            pending[remote.remote(fn_ref, item)] = item
            if len(pending) >= 2 * slots:
                break
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1)
            ref = ready[0]
            item = pending.pop(ref)
            try:
                result = ray.get(ref)
            except ray.exceptions.RayTaskError as e:
                if isinstance(e.cause, MemgenError):
                    raise e.cause from None
                raise
            except ray.exceptions.RayError as e:
                raise DataError(f"a Ray task failed ({type(e).__name__}); "
                                "re-run the same command to resume") from None
            nxt = next(todo, _END)
            if nxt is not _END:
                pending[remote.remote(fn_ref, nxt)] = nxt
            yield item, result
        done_all = True
    finally:
        if not done_all:
            for ref in pending:
                try:
                    ray.cancel(ref, force=True)
                except Exception:  # noqa: BLE001 - a task that already finished cannot be cancelled
                    pass
