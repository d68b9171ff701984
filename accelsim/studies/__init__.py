"""The field's standard resilience studies, one command each (``accelsim study NAME``).

Each study is a resumable campaign of ``model-run`` trials (:mod:`accelsim.experiments.trials`) in
``DIR/NAME.db``, aggregated into ``DIR/NAME.csv`` (one row per studied cell: the cell's keys,
``trials``, ``quality_drop`` = mean loss of the model's main quality metric vs golden), a figure
``DIR/NAME.png`` and a summary ``DIR/NAME.md``. Studies (:data:`STUDIES`): ``bitpos``,
``formats``, ``blocks``, ``timesteps``, ``layers``, ``clipping``, ``memory-vs-compute``, ``vf``,
``yield``; sources in ``/work/shared/papers`` (Stable Diffusion resilience, activation clipping
(Roquet et al.), DRIFT, ViT, text-to-video).
"""

from __future__ import annotations

from .core import StudyResult, run_study
from .defs import STUDIES

__all__ = ["STUDIES", "StudyResult", "run_study"]
