"""What a trained network is worth: predictions (:mod:`~pydiff.evaluation.predict`), metrics
(:mod:`~pydiff.evaluation.metrics`, numpy), a run's evaluation
(:mod:`~pydiff.evaluation.evaluate`), predictions for users' images
(:mod:`~pydiff.evaluation.inference`), figures and tables (:mod:`~pydiff.evaluation.figures`,
:mod:`~pydiff.evaluation.report`), and how far a prediction can be trusted (the calibrated
bound, :mod:`~pydiff.evaluation.bound`; the error from the equation,
:mod:`~pydiff.evaluation.aposteriori`; the learned error estimator,
:mod:`~pydiff.evaluation.learned_error`).  Speed (Eq. 4, training throughput, generation and
read speed) is measured in :mod:`pydiff.benchmarking`."""
