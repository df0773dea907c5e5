"""The networks and their losses: the 2021 surrogate (:mod:`~pydiff.nn.surrogate2021`, Table 1),
the 2024 encoder-decoder and U-Net (:mod:`~pydiff.nn.cnn2024`), neuraloperator's FNO
(:mod:`~pydiff.nn.fno`), the losses by name (:mod:`~pydiff.nn.losses`), and
:func:`~pydiff.nn.build.build_model`, which builds any of them from a run's configuration."""
