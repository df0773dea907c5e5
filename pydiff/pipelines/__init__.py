"""Pipelines of cached, resumable steps (:mod:`~pydiff.pipelines.steps`): Table 2 end to end
(:mod:`~pydiff.pipelines.reproduce`), the training-set-size study
(:mod:`~pydiff.pipelines.study`), baselines on one footing (:mod:`~pydiff.pipelines.compare`) and
label-free error estimates scored against the truth (:mod:`~pydiff.pipelines.trust`)."""
