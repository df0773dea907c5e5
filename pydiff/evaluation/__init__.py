"""What a trained network is worth: predictions (:mod:`~pydiff.evaluation.predict`), metrics
(:mod:`~pydiff.evaluation.metrics`, numpy), a run's evaluation
(:mod:`~pydiff.evaluation.evaluate`), predictions for users' images
(:mod:`~pydiff.evaluation.inference`), figures and tables (:mod:`~pydiff.evaluation.figures`,
:mod:`~pydiff.evaluation.report`), and speed (:mod:`~pydiff.evaluation.timing`: Eq. 4, training
throughput, generation and read speed)."""
