"""The campaign results store: one SQLite file in WAL mode, written by one process.

Tables (``PRAGMA application_id`` marks the file as an accelsim store, ``user_version`` is the
schema version)::

    campaign(name PK, kind, config_json, description, created, accelsim_version)
    trials(campaign, id, kind, config_json, status, metrics_json, error, traceback,
           started, finished, wall_s, worker, accelsim_version, seq;  PK (campaign, id))

``status`` is ``pending``, ``done`` or ``failed``. Every finished trial is committed in its own
transaction, so a campaign killed at any moment keeps every trial finished before the kill;
trials in flight stay ``pending`` and run again on resume. Timestamps are Unix seconds (UTC),
``wall_s`` is the trial's wall time in seconds measured in the worker. A second writer is not
supported (the running parent is the only one); readers (status, export) may run concurrently.
"""

from __future__ import annotations

import csv
import json
import sqlite3
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from accelsim import __version__
from accelsim.errors import StoreError

from .spec import Campaign, Trial

#: ``PRAGMA application_id`` of accelsim stores ("ACSM").
APPLICATION_ID = 0x4143534D
#: Schema version (``PRAGMA user_version``).
SCHEMA_VERSION = 1
STATUSES = ("pending", "done", "failed")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS campaign (
    name TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    config_json TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    created REAL NOT NULL,
    accelsim_version TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS trials (
    campaign TEXT NOT NULL REFERENCES campaign(name),
    id TEXT NOT NULL,
    kind TEXT NOT NULL,
    config_json TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'done', 'failed')),
    metrics_json TEXT,
    error TEXT,
    traceback TEXT,
    started REAL,
    finished REAL,
    wall_s REAL,
    worker TEXT,
    accelsim_version TEXT,
    seq INTEGER NOT NULL,
    PRIMARY KEY (campaign, id)
);
CREATE INDEX IF NOT EXISTS trials_status ON trials (campaign, status);
"""
_TRIAL_COLUMNS = {
    "campaign", "id", "kind", "config_json", "status", "metrics_json", "error", "traceback",
    "started", "finished", "wall_s", "worker", "accelsim_version", "seq",
}  # fmt: skip


@dataclass(frozen=True)
class TrialResult:
    """What a worker sends back for one trial (status ``done`` or ``failed``)."""

    id: str
    status: str
    metrics: dict[str, Any] | None
    error: str | None
    traceback: str | None
    started: float
    finished: float
    wall_s: float
    worker: str


@dataclass(frozen=True)
class CampaignStatus:
    """Counts of one campaign's trials and its mean trial wall time (s, over done trials)."""

    name: str
    kind: str
    done: int
    failed: int
    pending: int
    mean_wall_s: float | None
    last_errors: tuple[str, ...]

    @property
    def total(self) -> int:
        """All trials of the campaign."""
        return self.done + self.failed + self.pending

    def eta_s(self, workers: int = 1) -> float | None:
        """Seconds to finish the pending trials on ``workers`` workers at the mean trial time."""
        if self.mean_wall_s is None:
            return None
        return self.pending * self.mean_wall_s / max(1, workers)


@dataclass(frozen=True)
class StoredTrial:
    """One row of ``trials`` with its JSON columns decoded."""

    campaign: str
    id: str
    kind: str
    config: dict[str, Any]
    status: str
    metrics: dict[str, Any] | None
    error: str | None
    started: float | None
    finished: float | None
    wall_s: float | None
    worker: str | None
    accelsim_version: str | None


class Store:
    """A results store at ``path`` (created on first use unless ``create=False``)."""

    def __init__(self, path: str | Path, *, create: bool = True) -> None:
        self.path = Path(path)
        if not create and not self.path.exists():
            raise StoreError(
                f"store {str(self.path)!r}: not found (run 'accelsim campaign run' first)"
            )
        if self.path.exists() and self.path.is_dir():
            raise StoreError(f"store {str(self.path)!r}: is a directory, expected a SQLite file")
        fresh = not self.path.exists() or self.path.stat().st_size == 0
        try:
            self._db = sqlite3.connect(str(self.path), timeout=30.0, isolation_level=None)
        except sqlite3.Error as exc:
            raise StoreError(f"store {str(self.path)!r}: cannot open ({exc})") from None
        try:
            self._init(fresh)
        except sqlite3.DatabaseError as exc:
            self._db.close()
            raise StoreError(
                f"store {str(self.path)!r}: not an accelsim results store or corrupted ({exc})"
            ) from None
        except StoreError:
            self._db.close()
            raise

    def _init(self, fresh: bool) -> None:
        db = self._db
        app = db.execute("PRAGMA application_id").fetchone()[0]
        version = db.execute("PRAGMA user_version").fetchone()[0]
        tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        if fresh or (app == 0 and version == 0 and not tables):
            db.execute("PRAGMA journal_mode=WAL")
            db.executescript(
                f"BEGIN; {_SCHEMA} PRAGMA application_id={APPLICATION_ID}; "
                f"PRAGMA user_version={SCHEMA_VERSION}; COMMIT;"
            )
            return
        if app != APPLICATION_ID:
            raise StoreError(
                f"store {str(self.path)!r}: a SQLite file but not an accelsim results store "
                f"(tables: {', '.join(sorted(tables)) or 'none'})"
            )
        if version != SCHEMA_VERSION:
            raise StoreError(
                f"store {str(self.path)!r}: schema version {version}, this accelsim reads "
                f"version {SCHEMA_VERSION}"
            )
        cols = {r[1] for r in db.execute("PRAGMA table_info(trials)")}
        if not {"campaign", "trials"} <= tables or cols != _TRIAL_COLUMNS:
            raise StoreError(f"store {str(self.path)!r}: missing or altered tables (corrupted)")
        check = db.execute("PRAGMA quick_check").fetchone()[0]
        if check != "ok":
            raise StoreError(f"store {str(self.path)!r}: corrupted ({check})")
        db.execute("PRAGMA journal_mode=WAL")

    # ------------------------------------------------------------------ lifecycle

    def close(self) -> None:
        """Close the connection (checkpoints the WAL)."""
        self._db.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _write(self, sql: str, rows: Iterable[tuple[Any, ...]]) -> None:
        try:
            self._db.execute("BEGIN IMMEDIATE")
            self._db.executemany(sql, rows)
            self._db.execute("COMMIT")
        except sqlite3.Error as exc:
            if self._db.in_transaction:
                self._db.execute("ROLLBACK")
            raise StoreError(f"store {str(self.path)!r}: write failed ({exc})") from None

    # ------------------------------------------------------------------ writing

    def add_campaign(self, campaign: Campaign) -> int:
        """Record ``campaign`` and insert its trials not yet in the store; returns how many new.

        A campaign already in the store under the same name must have the same trial kind; its
        stored definition is updated and trials it no longer has are kept.
        """
        row = self._db.execute(
            "SELECT kind FROM campaign WHERE name = ?", (campaign.name,)
        ).fetchone()
        if row is not None and row[0] != campaign.kind:
            raise StoreError(
                f"campaign {campaign.name!r}: already in {str(self.path)!r} with trial kind "
                f"{row[0]!r}, got {campaign.kind!r}; use another name or store"
            )
        before = self._count(campaign.name)
        seq0 = self._db.execute(
            "SELECT COALESCE(MAX(seq), -1) + 1 FROM trials WHERE campaign = ?", (campaign.name,)
        ).fetchone()[0]
        try:
            self._db.execute("BEGIN IMMEDIATE")
            self._db.execute(
                "INSERT INTO campaign (name, kind, config_json, description, created, "
                "accelsim_version) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(name) DO UPDATE SET "
                "config_json = excluded.config_json, description = excluded.description",
                (
                    campaign.name,
                    campaign.kind,
                    campaign.source_json(),
                    campaign.description,
                    time.time(),
                    __version__,
                ),
            )
            self._db.executemany(
                "INSERT OR IGNORE INTO trials (campaign, id, kind, config_json, status, seq) "
                "VALUES (?, ?, ?, ?, 'pending', ?)",
                (
                    (campaign.name, t.id, t.kind, json.dumps(t.config, sort_keys=True), seq0 + i)
                    for i, t in enumerate(campaign.trials)
                ),
            )
            self._db.execute("COMMIT")
        except sqlite3.Error as exc:
            if self._db.in_transaction:
                self._db.execute("ROLLBACK")
            raise StoreError(f"store {str(self.path)!r}: write failed ({exc})") from None
        return self._count(campaign.name) - before

    def record(self, campaign: str, result: TrialResult) -> None:
        """Commit one finished trial (one transaction)."""
        metrics = None if result.metrics is None else json.dumps(result.metrics, sort_keys=True)
        self._write(
            "UPDATE trials SET status = ?, metrics_json = ?, error = ?, traceback = ?, "
            "started = ?, finished = ?, wall_s = ?, worker = ?, accelsim_version = ? "
            "WHERE campaign = ? AND id = ?",
            [
                (
                    result.status,
                    metrics,
                    result.error,
                    result.traceback,
                    result.started,
                    result.finished,
                    result.wall_s,
                    result.worker,
                    __version__,
                    campaign,
                    result.id,
                )
            ],
        )

    # ------------------------------------------------------------------ reading

    def _count(self, campaign: str) -> int:
        return int(
            self._db.execute(
                "SELECT COUNT(*) FROM trials WHERE campaign = ?", (campaign,)
            ).fetchone()[0]
        )

    def campaigns(self) -> list[tuple[str, str]]:
        """``(name, kind)`` of every campaign, oldest first."""
        return [
            (r[0], r[1])
            for r in self._db.execute("SELECT name, kind FROM campaign ORDER BY created, name")
        ]

    def _check_campaign(self, campaign: str | None) -> list[str]:
        names = [n for n, _ in self.campaigns()]
        if campaign is None:
            return names
        if campaign not in names:
            raise StoreError(
                f"campaign: got {campaign!r}, not in {str(self.path)!r}; stored: "
                f"{', '.join(names) or 'none'}"
            )
        return [campaign]

    def to_run(self, campaign: Campaign, *, retry_failed: bool = False) -> list[Trial]:
        """The trials of ``campaign`` still to run (pending, plus failed if ``retry_failed``)."""
        wanted = ("pending", "failed") if retry_failed else ("pending",)
        status = dict(
            self._db.execute(
                "SELECT id, status FROM trials WHERE campaign = ?", (campaign.name,)
            ).fetchall()
        )
        return [t for t in campaign.trials if status.get(t.id, "pending") in wanted]

    def status(self, campaign: str | None = None) -> list[CampaignStatus]:
        """Counts per campaign (all campaigns, or the one named)."""
        out = []
        kinds = dict(self.campaigns())
        for name in self._check_campaign(campaign):
            counts = dict.fromkeys(STATUSES, 0)
            for st, n in self._db.execute(
                "SELECT status, COUNT(*) FROM trials WHERE campaign = ? GROUP BY status", (name,)
            ):
                counts[st] = int(n)
            mean = self._db.execute(
                "SELECT AVG(wall_s) FROM trials WHERE campaign = ? AND status = 'done'", (name,)
            ).fetchone()[0]
            errors = tuple(
                f"{r[0][:12]}: {r[1]}"
                for r in self._db.execute(
                    "SELECT id, error FROM trials WHERE campaign = ? AND status = 'failed' "
                    "ORDER BY finished DESC LIMIT 5",
                    (name,),
                )
            )
            out.append(
                CampaignStatus(
                    name=name,
                    kind=kinds[name],
                    done=counts["done"],
                    failed=counts["failed"],
                    pending=counts["pending"],
                    mean_wall_s=None if mean is None else float(mean),
                    last_errors=errors,
                )
            )
        return out

    def trials(self, campaign: str | None = None) -> Iterator[StoredTrial]:
        """All stored trials (of one campaign or all), in campaign then expansion order."""
        names = self._check_campaign(campaign)
        for name in names:
            for r in self._db.execute(
                "SELECT campaign, id, kind, config_json, status, metrics_json, error, started, "
                "finished, wall_s, worker, accelsim_version FROM trials WHERE campaign = ? "
                "ORDER BY seq",
                (name,),
            ):
                yield StoredTrial(
                    campaign=r[0],
                    id=r[1],
                    kind=r[2],
                    config=json.loads(r[3]),
                    status=r[4],
                    metrics=None if r[5] is None else json.loads(r[5]),
                    error=r[6],
                    started=r[7],
                    finished=r[8],
                    wall_s=r[9],
                    worker=r[10],
                    accelsim_version=r[11],
                )

    def traceback(self, campaign: str, trial: str) -> str | None:
        """The stored traceback text of a failed trial (id or a unique id prefix)."""
        rows = self._db.execute(
            "SELECT traceback FROM trials WHERE campaign = ? AND id LIKE ?", (campaign, trial + "%")
        ).fetchall()
        return rows[0][0] if len(rows) == 1 else None

    # ------------------------------------------------------------------ export

    def table(
        self, campaign: str | None = None, *, include_pending: bool = False
    ) -> tuple[list[str], list[list[Any]]]:
        """Flat table of the trials: a column per config key and per metric (metrics that
        share a config key's name are prefixed ``metric_``)."""
        rows = [t for t in self.trials(campaign) if include_pending or t.status != "pending"]
        cfg_keys: dict[str, None] = {}
        met_keys: dict[str, None] = {}
        for t in rows:
            cfg_keys.update(dict.fromkeys(t.config))
            met_keys.update(dict.fromkeys(t.metrics or {}))
        head = ["campaign", "id", "kind", "status"]
        met_names = {m: (f"metric_{m}" if m in cfg_keys or m in head else m) for m in met_keys}
        tail = ["error", "wall_s", "worker", "started", "finished", "accelsim_version"]
        columns = head + list(cfg_keys) + list(met_names.values()) + tail
        data = []
        for t in rows:
            metrics = t.metrics or {}
            data.append(
                [t.campaign, t.id, t.kind, t.status]
                + [t.config.get(k) for k in cfg_keys]
                + [metrics.get(m) for m in met_keys]
                + [t.error, t.wall_s, t.worker, t.started, t.finished, t.accelsim_version]
            )
        return columns, data

    def export_csv(self, out: str | Path, campaign: str | None = None) -> int:
        """Write done and failed trials as CSV (empty cell = missing); returns the row count."""
        columns, data = self.table(campaign)
        try:
            with open(out, "w", newline="", encoding="utf-8") as fh:
                writer = csv.writer(fh)
                writer.writerow(columns)
                for row in data:
                    writer.writerow(["" if v is None else _cell(v) for v in row])
        except OSError as exc:
            raise StoreError(f"--csv {str(out)!r}: cannot write ({exc})") from None
        return len(data)

    def export_parquet(self, out: str | Path, campaign: str | None = None) -> int:
        """Write done and failed trials as Parquet (needs pyarrow); returns the row count."""
        try:
            import pyarrow as pa
            import pyarrow.parquet as pq
        except ImportError:
            raise StoreError(
                "--parquet: needs pyarrow, which is not installed (pip install pyarrow)"
            ) from None
        columns, data = self.table(campaign)
        arrays = {}
        for j, name in enumerate(columns):
            values = [row[j] for row in data]
            kinds = {type(v) for v in values if v is not None}
            if kinds == {int, float}:
                values = [None if v is None else float(v) for v in values]
            elif len(kinds) > 1 or kinds & {list, dict}:
                values = [None if v is None else _cell(v) for v in values]
            arrays[name] = values
        try:
            pq.write_table(pa.table(arrays), str(out))
        except (OSError, pa.ArrowException) as exc:
            raise StoreError(f"--parquet {str(out)!r}: cannot write ({exc})") from None
        return len(data)


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, list | dict):
        return json.dumps(value, sort_keys=True)
    return str(value)
