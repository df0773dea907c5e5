"""The one check of a seed, wherever pydiff takes one (data, training, the table's bootstrap).

numpy's generators take any non-negative integer and refuse a negative one; torch's take
-2**63 .. 2**64 - 1 (a negative one folded into the unsigned range); a data file stores its seed
as an HDF5 64-bit integer and a run's derived streams add small offsets to it (seed + 1, an
ensemble member's seed + 1 + k).  The seeds all three take alike, with room for those offsets:
0 <= seed < 2**63.  Checked where the library takes a seed, before any file or directory is made.
"""

from __future__ import annotations

import numbers

from .errors import ConfigError

SEED_LIMIT = 2**63  # seeds are 0 .. SEED_LIMIT - 1


def seed_problem(seed) -> str | None:
    """Why ``seed`` is not a seed (None: it is one)."""
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or not 0 <= int(seed) < SEED_LIMIT:
        return f"must be an integer from 0 to 2**63 - 1, got {seed}"
    return None


def check_seed(seed, option: str = "--seed") -> int:
    """``seed`` as an int, or :class:`ConfigError` naming ``option`` (how the user gave it)."""
    problem = seed_problem(seed)
    if problem is not None:
        raise ConfigError(f"{option} {problem}")
    return int(seed)


def check_seeds(seeds, option: str = "--seeds") -> tuple[int, ...]:
    """Every seed of ``seeds`` (:func:`check_seed`), checked before the first is used."""
    bad = [seed for seed in seeds if seed_problem(seed) is not None]
    if bad:
        raise ConfigError(f"{option} must be integers from 0 to 2**63 - 1, got {bad[0]}")
    return tuple(int(seed) for seed in seeds)
