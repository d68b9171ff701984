"""Resumable campaigns: a grid of configurations -> trials -> executors -> one SQLite store.

Public API::

    from accelsim.campaign import load_campaign, run_campaign, register_trial, Store

    camp = load_campaign("campaigns/smoke.toml")      # or a dict; Campaign with .trials
    summary = run_campaign(camp, "results.db", workers=2)   # or dask="local", serial=True
    Store("results.db").export_csv("out.csv")

New trial kinds: :func:`register_trial` (see :mod:`accelsim.campaign.registry`).
"""

from .registry import KIND_MODULES, TrialKind, get_trial_kind, register_trial, trial_kinds
from .runner import RunSummary, run_campaign
from .spec import Campaign, Trial, canonical_json, load_campaign, parse_campaign, trial_id
from .store import CampaignStatus, Store, StoredTrial, TrialResult

__all__ = [
    "KIND_MODULES",
    "Campaign",
    "CampaignStatus",
    "RunSummary",
    "Store",
    "StoredTrial",
    "Trial",
    "TrialKind",
    "TrialResult",
    "canonical_json",
    "get_trial_kind",
    "load_campaign",
    "parse_campaign",
    "register_trial",
    "run_campaign",
    "trial_id",
    "trial_kinds",
]
