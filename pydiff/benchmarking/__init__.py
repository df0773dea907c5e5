"""Benchmarking: what pydiff's parts cost, measured and never asserted (``pydiff bench`` and
``benchmarks/``).

- :mod:`~pydiff.benchmarking.machine`: the one-line description of the machine every table is dated with;
- :mod:`~pydiff.benchmarking.speed`: seconds per sample of a solver (δ) and of a network's forward pass (ε);
- :mod:`~pydiff.benchmarking.eq4`: the paper's Eq. 4 (δ, ε, M, E and N_min) beside its published values;
- :mod:`~pydiff.benchmarking.varied`: Eq. 4 where D varies, against the fastest iterative solver stopped at the
  network's own error (the equal-accuracy baseline);
- :mod:`~pydiff.benchmarking.training`: training throughput, the projected hours of a run and its checkpoint bytes;
- :mod:`~pydiff.benchmarking.data`: data-set generation and read speed.

Speed targets live in the README and docs, not in tests: a timed test fails on a busy machine and proves
nothing on a fast one.  The part sits above :mod:`pydiff.evaluation` (Eq. 4's N_min, a run's predictions)
and :mod:`pydiff.training` (its real optimiser step), below :mod:`pydiff.pipelines` and the CLI.
"""
