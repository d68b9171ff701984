"""The experiment layer: composes models, accelerator, protection and quality into results.

* :mod:`~accelsim.experiments.runner`: a shipped model loaded once (:class:`ModelSession`),
  run on an accelerator, compared with its golden run;
* :mod:`~accelsim.experiments.protect`: the accelerator with a DVFS policy, regulator
  transitions, checksum ABFT, checkpoints and rollback (:class:`ProtectedAccelerator`);
* :mod:`~accelsim.experiments.trials`: **the one run path**, a configuration against its golden
  run -> metrics (:func:`run_configuration`), also the campaign trial kind ``model-run`` that
  ``accelsim run``, ``explore`` and the studies all use;
* :mod:`~accelsim.experiments.profiling`: block x timestep resilience profiles;
* :mod:`~accelsim.experiments.explore`: the main job, a campaign of ``model-run`` trials;
* :mod:`~accelsim.experiments.projection`: the best policies projected onto full-size workloads.

Modules are imported on use (``from accelsim.experiments.trials import ...``): this package
imports nothing at import time.
"""
