"""Small statistics shared by the evaluations: subset draws, means with confidence intervals.

* :func:`draw_subsets`: the pools a size-``n`` Best-of-N curve point is averaged over: every size-``n``
  subset when there are at most ``count`` of them (exact average), else ``count`` distinct random
  ones (seeded per problem, so reruns and resumed runs draw the same).
* :func:`mean_ci`: mean over problems with a normal-approximation interval (``z * sd / sqrt(P)``),
  clipped to the range the values can take (shares: [0, 1], i.e. [0, 100] %), so a table never
  shows 101.0%.
* :func:`percentile_interval`: the percentile bootstrap interval at a given level.
"""

from __future__ import annotations

import hashlib
import math
import random
import statistics
from itertools import combinations
from typing import Sequence


def powers_of_two(n_max: int) -> list[int]:
    """1, 2, 4, ... up to ``n_max``, plus ``n_max`` itself."""
    values = [1]
    while values[-1] * 2 <= n_max:
        values.append(values[-1] * 2)
    if values[-1] != n_max:
        values.append(n_max)
    return values


def item_rng(*parts: object) -> random.Random:
    """A ``random.Random`` seeded by ``parts`` (stable across processes, unlike ``hash``)."""
    digest = hashlib.sha256(repr(parts).encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


def draw_subsets(pool_size: int, n: int, count: int, *seed_parts: object) -> list[tuple[int, ...]]:
    """Size-``n`` subsets of ``range(pool_size)`` to average a curve point over (see module doc)."""
    if not 1 <= n <= pool_size:
        raise ValueError(f"subset size must be in 1..{pool_size}, got {n}")
    total = math.comb(pool_size, n)
    if total <= count:
        return list(combinations(range(pool_size), n))
    rng = item_rng(pool_size, n, *seed_parts)
    drawn: set[tuple[int, ...]] = set()
    while len(drawn) < count:
        drawn.add(tuple(sorted(rng.sample(range(pool_size), n))))
    return sorted(drawn)


def z_value(level: float) -> float:
    """Two-sided normal quantile for a confidence ``level`` (0.95 -> 1.96)."""
    if not 0 < level < 1:
        raise ValueError(f"confidence level must be in (0, 1), got {level}")
    return statistics.NormalDist().inv_cdf(0.5 + level / 2)


def mean_ci(
    values: Sequence[float], level: float = 0.95, bounds: tuple[float, float] | None = (0.0, 1.0)
) -> tuple[float, float, float]:
    """(mean, low, high): normal-approximation interval of the mean of ``values``.

    ``bounds``: the range the values lie in (default: shares in [0, 1]); the interval is clipped to
    it (``None``: not clipped).
    """
    if not values:
        return float("nan"), float("nan"), float("nan")
    mean = sum(values) / len(values)
    if len(values) < 2:
        return mean, mean, mean
    half = z_value(level) * statistics.stdev(values) / math.sqrt(len(values))
    low, high = mean - half, mean + half
    if bounds is not None:
        low, high = max(low, bounds[0]), min(high, bounds[1])
    return mean, low, high


def percentile_interval(samples: Sequence[float], level: float) -> tuple[float, float]:
    """The central ``level`` interval of bootstrap ``samples`` (linear-interpolated percentiles)."""
    import numpy as np

    tail = (1 - level) / 2 * 100
    low, high = np.percentile(np.asarray(samples, dtype=float), [tail, 100 - tail])
    return float(low), float(high)
