"""Training: a run's configuration (:mod:`~pydiff.training.config`) and data
(:mod:`~pydiff.training.data`), one optimiser step (:mod:`~pydiff.training.step`), the loop
(:mod:`~pydiff.training.trainer`) and its roll-back, snapshots and BatchNorm recalibration, the
run directory's files (:mod:`~pydiff.training.checkpoint`; pydiff 0.1's, still read:
:mod:`~pydiff.training.legacy_checkpoint`), devices and data parallelism
(:mod:`~pydiff.training.distributed`; where tensors live: :mod:`pydiff.device`), and
:func:`~pydiff.training.run.train`, which builds all of it from a configuration."""
