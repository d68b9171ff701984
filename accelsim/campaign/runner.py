"""Run a campaign against a store: add its trials, run what is left, commit each result."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from accelsim.config import check_int

from .executors import Executor, make_executor
from .registry import get_trial_kind
from .spec import Campaign, load_campaign
from .store import Store, TrialResult


@dataclass(frozen=True)
class RunSummary:
    """What one :func:`run_campaign` call did. ``seconds`` is its wall time (s)."""

    campaign: str
    total: int
    new: int
    skipped: int
    ran: int
    done: int
    failed: int
    pending: int
    seconds: float
    executor: str
    workers: int

    @property
    def trials_per_s(self) -> float:
        """Trials finished per second of this run."""
        return self.ran / self.seconds if self.seconds > 0 else 0.0


def run_campaign(
    campaign: Campaign | str | Path | dict[str, Any],
    store: Store | str | Path,
    *,
    executor: Executor | None = None,
    workers: int | None = None,
    dask: str | None = None,
    serial: bool = False,
    retry_failed: bool = False,
    limit: int | None = None,
    on_start: Callable[[int], None] | None = None,
    on_result: Callable[[TrialResult], None] | None = None,
) -> RunSummary:
    """Run the trials of ``campaign`` not yet done in ``store`` and commit each one.

    Parameters
    ----------
    campaign
        A parsed :class:`Campaign`, a TOML path or a campaign dict.
    store
        A :class:`Store` or the path of its SQLite file (created if missing).
    executor
        An executor to use (default: from ``workers`` / ``dask`` / ``serial``, see
        :func:`~accelsim.campaign.executors.make_executor`).
    retry_failed
        Also rerun trials recorded as failed.
    limit
        Run at most this many of the remaining trials (in expansion order).
    on_start, on_result
        Called with the number of trials about to run, then with each result once committed.

    A KeyboardInterrupt stops the workers and propagates; every trial finished before it is
    committed, the others stay pending.
    """
    camp = campaign if isinstance(campaign, Campaign) else load_campaign(campaign)
    kind = get_trial_kind(camp.kind)
    if limit is not None:
        limit = check_int("--limit", limit, 0)
    ex = executor or make_executor(workers=workers, dask=dask, serial=serial)
    owns_store = not isinstance(store, Store)
    st = Store(store) if not isinstance(store, Store) else store
    try:
        new = st.add_campaign(camp)
        todo = st.to_run(camp, retry_failed=retry_failed)
        skipped = len(camp.trials) - len(todo)
        if limit is not None:
            todo = todo[:limit]
        if on_start is not None:
            on_start(len(todo))
        t0 = time.perf_counter()
        done = failed = 0
        with ex:
            for result in ex.run(kind, todo):
                st.record(camp.name, result)
                if result.status == "done":
                    done += 1
                else:
                    failed += 1
                if on_result is not None:
                    on_result(result)
        seconds = time.perf_counter() - t0
        status = st.status(camp.name)[0]
        return RunSummary(
            campaign=camp.name,
            total=len(camp.trials),
            new=new,
            skipped=skipped,
            ran=done + failed,
            done=done,
            failed=failed,
            pending=status.pending,
            seconds=seconds,
            executor=ex.name,
            workers=ex.workers,
        )
    finally:
        if owns_store:
            st.close()
