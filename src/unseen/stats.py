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

import itertools
import math
import zlib
from collections import Counter
from collections.abc import Callable, Sequence
from fractions import Fraction

import numpy as np
import scipy.stats
from rliable import metrics

Scores = Sequence[np.ndarray]
"""One array of per-seed scores per task."""

EXACT_SPLITS = 100_000
"""The most ways to split one task's pooled runs that `improvement_p_value` enumerates; beyond it, it samples."""


def iqm(scores: Scores) -> float:
    """Interquartile mean over every run of every task (`rliable.metrics.aggregate_iqm`)."""
    return float(metrics.aggregate_iqm(np.concatenate(scores)))


def optimality_gap(scores: Scores) -> float:
    """How far scores fall short of 1 (the top of the score range) on average
    (`rliable.metrics.aggregate_optimality_gap`)."""
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
    return doubled_u(x, y) / (2 * x.shape[1] * y.shape[1])


def doubled_u(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Twice the Mann-Whitney U of each row pair of `x` (r, n) and `y` (r, m), as integers: 2 #(x > y) + #(x = y)."""
    greater = (x[:, :, None] > y[:, None, :]).sum(axis=(1, 2))
    return 2 * greater + (x[:, :, None] == y[:, None, :]).sum(axis=(1, 2))


def splits(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Every way to deal the pooled runs of `x` (n) and `y` (m) into n for X and m for Y: arrays (C(n+m, n), n)
    and (C(n+m, n), m), the observed split among them."""
    pooled = np.concatenate([x, y])
    chosen = np.zeros((math.comb(len(pooled), len(x)), len(pooled)), dtype=bool)
    for row, picks in zip(chosen, itertools.combinations(range(len(pooled)), len(x)), strict=True):
        row[list(picks)] = True
    everything = np.broadcast_to(pooled, chosen.shape)
    return everything[chosen].reshape(len(chosen), -1), everything[~chosen].reshape(len(chosen), -1)


def improvement_p_value(x: Scores, y: Scores, reps: int, rng: np.random.Generator) -> float:
    """One-sided p-value of "X tends to score above Y": a permutation test of `probability_of_improvement`.

    Under the null hypothesis, a task's runs of X and Y are exchangeable, so each way of dealing the task's pooled
    runs into n for X and m for Y is equally likely, independently per task (stratified like the bootstrap). The
    p-value is the share of those deals whose P(X > Y), averaged over tasks, is at least the observed one. It is
    exact (`exact_p_value`) when each task has at most `EXACT_SPLITS` deals; with n = m = 3 seeds on one task
    there are 20, so 1/20 = 0.05 is the smallest p-value three seeds can give. Otherwise `reps` random deals
    estimate it, as (1 + hits) / (1 + reps). NaN when every task of both has one run, as for the intervals.
    Rank-based: any increasing transformation of the scores leaves it unchanged.
    """
    if single_runs(x) and single_runs(y):
        return np.nan
    tasks = list(zip(x, y, strict=True))
    if all(math.comb(len(a) + len(b), len(a)) <= EXACT_SPLITS for a, b in tasks):
        return exact_p_value(tasks)
    null = np.zeros(reps)
    for a, b in tasks:
        deals = rng.permuted(np.broadcast_to(np.concatenate([a, b]), (reps, len(a) + len(b))), axis=1)
        null += batched_improvement(deals[:, : len(a)], deals[:, len(a) :]) / len(tasks)
    hits = int((null >= probability_of_improvement(x, y) - 1e-12).sum())  # the tolerance absorbs rounding
    return (1 + hits) / (1 + reps)


def exact_p_value(tasks: Sequence[tuple[np.ndarray, np.ndarray]]) -> float:
    """`improvement_p_value` over every deal of every task, in exact fractions: the null distribution of the sum
    over tasks of P(X > Y) is the convolution of each task's distribution over its deals."""
    null: Counter[Fraction] = Counter({Fraction(0): 1})
    observed = Fraction(0)
    for a, b in tasks:
        scale = 2 * len(a) * len(b)
        values, counts = np.unique(doubled_u(*splits(a, b)), return_counts=True)
        convolved: Counter[Fraction] = Counter()
        for (total, n), (value, count) in itertools.product(null.items(), zip(values, counts, strict=True)):
            convolved[total + Fraction(int(value), scale)] += n * int(count)
        null = convolved
        observed += Fraction(int(doubled_u(a[None], b[None])[0]), scale)
    return float(Fraction(sum(n for total, n in null.items() if total >= observed), sum(null.values())))


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
