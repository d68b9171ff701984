"""Executors: run trials serially, on a local process pool, or on a Dask cluster.

All three call the same :func:`run_trial` on each trial and hand the results back to the
parent (the store's only writer) as they complete. A trial's result depends only on its
config, so the metrics are bit-identical whichever executor or worker count ran it; only the
completion order differs. Every worker process builds a kind's state (``setup()``) once, on its
first trial of that kind, and keeps it for the following ones.

* ``SerialExecutor``: in the calling process (no isolation; handy for debugging).
* ``PoolExecutor``: ``concurrent.futures.ProcessPoolExecutor`` with the ``spawn`` context;
  workers ignore SIGINT (the parent handles Ctrl-C) and run numba/BLAS single-threaded
  (one trial per core). Interrupting terminates the workers at once; their trials stay pending.
* ``DaskExecutor``: ``address="local"`` starts a ``distributed.LocalCluster`` (process
  workers, one thread each); ``tcp://HOST:PORT`` connects to a running scheduler whose workers
  can import accelsim (and the modules of any registered trial kinds).
"""

from __future__ import annotations

import contextlib
import itertools
import os
import signal
import socket
import threading
import time
import traceback
import uuid
from collections.abc import Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from types import TracebackType
from typing import Any

from accelsim.errors import AccelsimError, ConfigError

from .registry import TrialKind, clean_metrics
from .spec import Trial
from .store import TrialResult

_STATE: dict[str, Any] = {}
_STATE_LOCK = threading.Lock()
#: Environment of pool workers: one compute thread per worker process (no oversubscription).
WORKER_ENV = {
    "NUMBA_NUM_THREADS": "1",
    "OMP_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
}


#: Trials queued per worker at a time (bounded memory for very large campaigns).
WINDOW_PER_WORKER = 4
#: Seconds to wait for a Dask scheduler given by address before giving up.
CONNECT_TIMEOUT_S = 15.0


class WorkerLostError(AccelsimError):
    """A worker process died (crash, out of memory, killed) while running trials."""


def _worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _state_for(kind: TrialKind) -> Any:
    with _STATE_LOCK:
        if kind.name not in _STATE:
            _STATE[kind.name] = kind.setup() if kind.setup is not None else None
        return _STATE[kind.name]


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def run_trial(kind: TrialKind, trial: Trial) -> TrialResult:
    """Run one trial in this process; exceptions become a ``failed`` result (never raised).

    ``wall_s`` excludes the kind's one-time ``setup()``.
    """
    started = time.time()
    try:
        state = _state_for(kind)
        started = time.time()
        t0 = time.perf_counter()
        metrics = clean_metrics(kind.fn(dict(trial.config), state))
        wall = time.perf_counter() - t0
        return TrialResult(
            trial.id, "done", metrics, None, None, started, time.time(), wall, _worker_name()
        )
    except Exception as exc:
        return TrialResult(
            trial.id,
            "failed",
            None,
            _one_line(exc),
            traceback.format_exc(),
            started,
            time.time(),
            time.time() - started,
            _worker_name(),
        )


def _watch_parent(parent: int) -> None:
    while True:
        time.sleep(0.5)
        if os.getppid() != parent:  # the parent died (even by SIGKILL): do not linger
            os._exit(1)


def _pool_init(parent: int) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    os.environ.update(WORKER_ENV)
    threading.Thread(target=_watch_parent, args=(parent,), daemon=True).start()


class Executor:
    """Base class: a context manager whose :meth:`run` yields results as trials complete."""

    name = "executor"
    workers = 1

    def __enter__(self) -> Executor:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close(abort=exc_type is not None)

    def close(self, *, abort: bool = False) -> None:
        """Release workers; ``abort`` stops running trials at once."""

    def run(self, kind: TrialKind, trials: Sequence[Trial]) -> Iterator[TrialResult]:
        """Run ``trials`` and yield their results in completion order."""
        raise NotImplementedError


class SerialExecutor(Executor):
    """Runs trials one after the other in the calling process."""

    name = "serial"

    def run(self, kind: TrialKind, trials: Sequence[Trial]) -> Iterator[TrialResult]:
        for trial in trials:
            yield run_trial(kind, trial)


class PoolExecutor(Executor):
    """A local pool of ``workers`` spawned processes."""

    name = "pool"

    def __init__(self, workers: int) -> None:
        if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
            raise ConfigError(f"--workers: got {workers!r}, expected an integer >= 1")
        self.workers = workers
        self._pool: ProcessPoolExecutor | None = None
        self._futures: list[Future[TrialResult]] = []

    def run(self, kind: TrialKind, trials: Sequence[Trial]) -> Iterator[TrialResult]:
        if not trials:
            return
        import multiprocessing
        from concurrent.futures.process import BrokenProcessPool

        self._pool = ProcessPoolExecutor(
            max_workers=min(self.workers, len(trials)),
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_pool_init,
            initargs=(os.getpid(),),
        )
        todo = iter(trials)
        window = WINDOW_PER_WORKER * self.workers
        pending: set[Future[TrialResult]] = set()
        self._futures = []
        while True:
            while len(pending) < window:  # keep a bounded number of trials queued
                trial = next(todo, None)
                if trial is None:
                    break
                fut = self._pool.submit(run_trial, kind, trial)
                pending.add(fut)
                self._futures.append(fut)
            if not pending:
                return
            done, pending = wait(pending, return_when=FIRST_COMPLETED)
            self._futures = list(pending)
            for fut in done:
                try:
                    result = fut.result()
                except BrokenProcessPool:
                    raise WorkerLostError(
                        "a worker process died while running a trial (crash or out of memory); "
                        "finished trials are saved, rerun to resume (--serial shows the cause)"
                    ) from None
                yield result

    def close(self, *, abort: bool = False) -> None:
        pool, self._pool = self._pool, None
        if pool is None:
            return
        if abort:
            for fut in self._futures:
                fut.cancel()
            # ProcessPoolExecutor has no public terminate before Python 3.14.
            procs = list(getattr(pool, "_processes", {}).values())
            for proc in procs:
                with contextlib.suppress(Exception):
                    proc.terminate()
            pool.shutdown(wait=True, cancel_futures=True)
        else:
            pool.shutdown(wait=True)


class DaskExecutor(Executor):
    """Trials as Dask tasks: ``address="local"`` (a LocalCluster) or ``tcp://HOST:PORT``."""

    name = "dask"

    def __init__(self, address: str, workers: int) -> None:
        if address != "local" and "://" not in address:
            raise ConfigError(
                f"--dask: got {address!r}, expected 'local' or a scheduler address "
                "such as tcp://HOST:8786"
            )
        self.address = address
        self.workers = workers
        self._client: Any = None
        self._cluster: Any = None
        self._futures: list[Any] = []

    def _connect(self) -> Any:
        import logging

        try:
            from distributed import Client, LocalCluster
        except ImportError:
            raise ConfigError(
                "--dask: needs dask.distributed (pip install 'accelsim[dist]')"
            ) from None
        if self.address == "local":
            self._cluster = LocalCluster(
                n_workers=self.workers,
                threads_per_worker=1,
                processes=True,
                dashboard_address=None,
                silence_logs=logging.ERROR,
                env=dict(WORKER_ENV),
            )
            self._client = Client(self._cluster)
        else:
            try:
                self._client = Client(self.address, timeout=f"{CONNECT_TIMEOUT_S}s")
            except (OSError, TimeoutError) as exc:
                raise ConfigError(
                    f"--dask: cannot connect to the scheduler at {self.address!r} "
                    f"({' '.join(str(exc).split())})"
                ) from None
            self.workers = max(1, len(self._client.scheduler_info().get("workers", {})))
        return self._client

    def run(self, kind: TrialKind, trials: Sequence[Trial]) -> Iterator[TrialResult]:
        if not trials:
            return
        from distributed import as_completed

        client = self._client or self._connect()
        token = uuid.uuid4().hex[:8]
        todo = iter(trials)
        window = WINDOW_PER_WORKER * max(self.workers, 1)

        def submit(trial: Trial) -> Any:
            key = f"accelsim-trial-{trial.id[:20]}-{token}"
            return client.submit(run_trial, kind, trial, key=key, pure=False)

        self._futures = [submit(t) for t in itertools.islice(todo, window)]
        queue = as_completed(self._futures)
        for fut in queue:
            self._futures.remove(fut)
            try:
                result = fut.result()
            except Exception as exc:  # KilledWorker, lost connection, ...
                raise WorkerLostError(
                    f"a Dask worker failed while running a trial ({_one_line(exc)}); finished "
                    "trials are saved, rerun to resume"
                ) from None
            trial = next(todo, None)
            if trial is not None:  # keep a bounded number of trials queued
                nxt = submit(trial)
                self._futures.append(nxt)
                queue.add(nxt)
            yield result

    def close(self, *, abort: bool = False) -> None:
        client, self._client = self._client, None
        if client is not None:
            with contextlib.suppress(Exception):
                if abort and self._futures:
                    client.cancel(self._futures)
            with contextlib.suppress(Exception):
                client.close()
        cluster, self._cluster = self._cluster, None
        if cluster is not None:
            with contextlib.suppress(Exception):
                cluster.close()


def make_executor(
    *, workers: int | None = None, dask: str | None = None, serial: bool = False
) -> Executor:
    """The executor for the CLI options: ``serial``, ``dask`` address, or a pool (default)."""
    if serial and dask:
        raise ConfigError("--serial and --dask: give at most one")
    n = workers if workers is not None else (os.cpu_count() or 1)
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ConfigError(f"--workers: got {n!r}, expected an integer >= 1")
    if serial:
        return SerialExecutor()
    if dask:
        return DaskExecutor(dask, n)
    return PoolExecutor(n)
