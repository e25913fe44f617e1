"""Aggregate statistics over runs with honest uncertainty: rliable's metrics, stratified bootstrap intervals.

Point estimates come from `rliable.metrics` (Agarwal et al., 2021, "Deep RL at the edge of the statistical
precipice"): the interquartile mean (IQM), the optimality gap and the probability of improvement.
Confidence intervals follow rliable's `get_interval_estimates` with its default percentile method: a
*stratified* bootstrap that resamples the runs (seeds) of each task with replacement, independently per
task (and, for the probability of improvement, independently per method), `reps` times.

Why not `rliable.library` itself: it imports `arch.bootstrap`, and every `arch` release rliable 1.2.0
accepts (< 8) fails to import under pandas 3 (`pandas.util._decorators.deprecate_kwarg` changed its
signature; arch 8 vendors its own copy, but rliable pins arch < 8). So the resampling is done here, on
arrays at once, by batched forms of rliable's metrics; tests check that they equal `rliable.metrics` on
every resample. Every function takes an explicit `numpy.random.Generator`: same inputs, same numbers.

Scores are per task a 1-D array of per-seed scores; tasks may have different seed counts.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Sequence

import numpy as np
import scipy.stats
from rliable import metrics

NORMALISER = 1000.0
"""DMControl convention: a return divided by 1000, the most an episode of 1000 steps can earn."""

Scores = Sequence[np.ndarray]
"""One array of per-seed scores per task."""


def iqm(scores: Scores) -> float:
    """Interquartile mean over every run of every task (`rliable.metrics.aggregate_iqm`)."""
    return float(metrics.aggregate_iqm(np.concatenate(scores)))


def optimality_gap(scores: Scores) -> float:
    """How far scores fall short of 1 (= 1000 return) on average (`rliable.metrics.aggregate_optimality_gap`)."""
    return float(metrics.aggregate_optimality_gap(np.concatenate(scores), gamma=1.0))


def probability_of_improvement(x: Scores, y: Scores) -> float:
    """P(X > Y) per task (Mann-Whitney U / (n m), ties count 1/2), averaged over tasks
    (`rliable.metrics.probability_of_improvement`, one task at a time so seed counts may differ)."""
    per_task = [metrics.probability_of_improvement(a[:, None], b[:, None]) for a, b in zip(x, y, strict=True)]
    return float(np.mean(per_task))


# ----- batched forms: one value per row of a (reps, runs) array ------------------------------------------


def batched_iqm(samples: np.ndarray) -> np.ndarray:
    return scipy.stats.trim_mean(samples, proportiontocut=0.25, axis=-1)


def batched_optimality_gap(samples: np.ndarray) -> np.ndarray:
    return 1.0 - np.minimum(samples, 1.0).mean(axis=-1)


def batched_improvement(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """P(X > Y) + P(X = Y) / 2 for each row pair of `x` (reps, n) and `y` (reps, m): the U statistic / (n m)."""
    greater = (x[:, :, None] > y[:, None, :]).mean(axis=(1, 2))
    equal = (x[:, :, None] == y[:, None, :]).mean(axis=(1, 2))
    return greater + equal / 2


def resample(scores: np.ndarray, reps: int, rng: np.random.Generator) -> np.ndarray:
    """`reps` bootstrap samples of `scores` (runs, ...) along its first axis: shape (reps, runs, ...)."""
    return scores[rng.integers(0, len(scores), size=(reps, len(scores)))]


def percentile_interval(values: np.ndarray, confidence: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """The percentile bootstrap interval of `values` (reps, ...) along the first axis."""
    tail = 100 * (1 - confidence) / 2
    low, high = np.percentile(values, [tail, 100 - tail], axis=0)
    return low, high


def stratified_interval(
    scores: Scores, batched: Callable[[np.ndarray], np.ndarray], reps: int, rng: np.random.Generator
) -> tuple[float, float]:
    """95% CI of an aggregate over tasks: each task's runs resampled on their own (rliable's StratifiedBootstrap);
    NaN when every task has one run (resampling it would give a zero-width interval that means nothing)."""
    if single_runs(scores):
        return np.nan, np.nan
    samples = np.concatenate([resample(task, reps, rng) for task in scores], axis=1)
    low, high = percentile_interval(batched(samples))
    return float(low), float(high)


def improvement_interval(x: Scores, y: Scores, reps: int, rng: np.random.Generator) -> tuple[float, float]:
    """95% CI of P(X > Y): each method's runs of each task resampled on their own
    (rliable's StratifiedIndependentBootstrap); NaN when every task of both has one run."""
    if single_runs(x) and single_runs(y):
        return np.nan, np.nan
    per_task = [batched_improvement(resample(a, reps, rng), resample(b, reps, rng)) for a, b in zip(x, y, strict=True)]
    low, high = percentile_interval(np.mean(per_task, axis=0))
    return float(low), float(high)


def single_runs(scores: Scores) -> bool:
    """Whether no task of `scores` has two runs, so that a bootstrap has nothing to resample."""
    return all(len(task) < 2 for task in scores)


def mean_band(samples: np.ndarray, reps: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean over seeds of `samples` (seeds, points) and its 95% percentile bootstrap band over seeds."""
    low, high = percentile_interval(resample(samples, reps, rng).mean(axis=1))
    return samples.mean(axis=0), low, high


def generator(seed: int, *names: str) -> np.random.Generator:
    """A generator for one named estimate: results for a method do not depend on which others are reported."""
    return np.random.default_rng([seed, *(zlib.crc32(name.encode()) for name in names)])
