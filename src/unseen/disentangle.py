"""Disentanglement of a representation against the true factors of its observations: the normalised mutual
information (NMI) matrix, MIG, and InfoMEC's modularity (InfoM) and compactness (InfoC).

Pure functions on samples: latents `[N, D]` and factors `[N, F]` (numpy arrays or torch tensors).
docs/disentanglement.md explains the choices; in short:

- Discretisation (`discretize`). A column with at most `bins` distinct values keeps them as categories
  (discrete factors, e.g. a video clip); any other column is cut into `bins` equal-frequency bins by rank,
  ties kept together. The common default is 20 equal-width bins (disentanglement_lib's
  `histogram_discretize`, used for MIG by Locatello et al. 2019); we keep 20 but make the bins
  equal-frequency, because then (1) the estimate depends on ranks only, so it is exactly invariant to any
  strictly increasing transformation of a variable (a latent's scale or squashing does not count), and
  (2) an outlier cannot empty most bins of its variable.
- Mutual information (`normalized_mutual_information`). The plug-in estimate on the joint histogram,
  adjusted for chance against a permutation null, divided by the factor's entropy:
      NMI[j, k] = (I(z_j; v_k) - E0[I]) / (H(v_k) - E0[I])   (0 below the chance level, 1 when z_j determines v_k)
  where E0 is the mean over `permutations` shufflings that pair the latents of each group of samples (an
  episode) with the factors of another group of the same size, in random order within it. Why a null,
  and why by group: the plug-in estimate of independent variables is biased upwards (about
  (m_z - 1)(m_v - 1) / 2N nats for i.i.d. samples, 0.09 nats with 20 x 20 bins and N = 2000), and
  observations come in episodes: a shift draws its colours, video and camera start once per episode, so
  with 100 episodes any latent that tells episodes apart (say, it encodes one colour) "determines" every
  other per-episode factor on the samples. Measured: 100 episodes of 20 samples and 6 independent
  per-episode factors, each encoded exactly by its own latent, give a chance-level plug-in NMI of 0.49
  between every latent and every other factor; neither the Miller-Madow correction nor a G-test (both
  assume independent samples) removes it. Shuffling whole groups keeps that structure in the null, and
  the adjusted estimate is then about 0. An entry is kept only if it exceeds its null mean by
  z * (the null's standard deviation), z the normal quantile of the family-wise level `alpha` over all
  D F entries (Bonferroni); other entries are 0. Without groups every sample is its own group (the usual
  permutation test).
- MIG (Chen et al. 2018, "Isolating Sources of Disentanglement in VAEs", Eq. 6): for each factor, the NMI
  of its most informative latent minus that of the second, averaged over factors.
- InfoM and InfoC (Hsu et al. 2023, "Disentanglement via Latent Quantization", NeurIPS, InfoMEC; as in
  their reference code, kylehkhsu/latent_quantization `disentangle/metrics/infomec.py`): over the active
  latents j and the K factors k,
      InfoM = (mean_j max_k NMI[j, k] / sum_k NMI[j, k]  -  1/K) / (1 - 1/K)
      InfoC = (mean_k max_j NMI[j, k] / sum_j NMI[j, k]  -  1/L) / (1 - 1/L),   L active latents.
  Active latents (`active_latents`): their rule, a range (max - min) above 1/20 of the largest latent's
  range; and ours, at least one kept NMI entry (a latent that carries no detectable information about any
  factor, e.g. pure noise, has no defined max/sum ratio and would add a random term to InfoM).

Deterministic: the permutations come from a generator seeded with `Estimation.seed`.

Factors with zero entropy (constant over the samples) are not scored: their NMI column is 0 and MIG,
InfoM and InfoC leave them out. Conventions where a formula divides by zero: InfoM is 1 with one scored
factor, InfoC is 1 with one active latent (nothing to spread over); InfoC averages over the factors that
some active latent informs; all three are 0 when no latent informs any factor.
"""

from __future__ import annotations

from dataclasses import dataclass
from statistics import NormalDist

import numpy as np
import torch

BINS = 20
"""Bins per continuous variable: the common default (disentanglement_lib's MIG)."""
ALPHA = 0.01
"""Family-wise significance level of the tests that keep NMI entries."""
PERMUTATIONS = 50
"""Shufflings of the permutation null of every mutual-information estimate."""
MIN_RANGE_FRACTION = 1 / 20
"""A latent whose range is below this fraction of the largest latent range is inactive (Hsu et al.)."""


@dataclass(frozen=True)
class Estimation:
    """How mutual information is estimated and tested."""

    bins: int = BINS
    """Equal-frequency bins per continuous variable."""
    alpha: float = ALPHA
    """Family-wise significance level of the tests that keep NMI entries (1 keeps all above chance)."""
    permutations: int = PERMUTATIONS
    """Shufflings of the permutation null."""
    seed: int = 0
    """Seed of the generator of the shufflings."""


def as_numpy(values: np.ndarray | torch.Tensor) -> np.ndarray:
    """`[N, V]` float64 numpy array from an array or a tensor on any device."""
    if isinstance(values, torch.Tensor):
        values = values.detach().cpu().numpy()
    values = np.asarray(values, dtype=np.float64)
    if values.ndim != 2:
        raise ValueError(f"expected samples of shape [N, V], got {values.shape}")
    return values


def discretize(values: np.ndarray | torch.Tensor, bins: int = BINS) -> np.ndarray:
    """Integer codes `[N, V]` in `[0, bins)`: columns with at most `bins` distinct values keep them (as
    categories, in sorted order); other columns get `bins` equal-frequency bins by rank, equal values
    sharing a bin (so a bin can hold more than N / bins samples)."""
    values = as_numpy(values)
    codes = np.empty(values.shape, dtype=np.int64)
    n = len(values)
    for column, x in enumerate(values.T):
        distinct, inverse = np.unique(x, return_inverse=True)
        if len(distinct) <= bins:
            codes[:, column] = inverse
        else:  # the rank of a value is the number of samples below it, so ties share it
            rank = np.searchsorted(np.sort(x), x, side="left")
            codes[:, column] = rank * bins // n
    return codes


def _plug_in_entropy(counts: np.ndarray, axis: int | tuple[int, ...]) -> np.ndarray:
    """Entropy (nats) of the histograms `counts` over `axis`."""
    p = counts / counts.sum(axis=axis, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(counts > 0, -p * np.log(p), 0.0).sum(axis=axis)


def entropy(codes: np.ndarray, bins: int = BINS) -> np.ndarray:
    """Plug-in entropy (nats) `[V]` of each column of codes from `discretize`; 0 exactly for a constant one."""
    return _plug_in_entropy(np.stack([np.bincount(column, minlength=bins) for column in codes.T]), 1)


def mutual_information(z: np.ndarray, v: np.ndarray, bins: int = BINS) -> np.ndarray:
    """Plug-in mutual information (nats) `[D, F]` of codes `z` `[N, D]` and `v` `[N, F]` from `discretize`."""
    d = z.shape[1]
    offsets = np.arange(d) * bins * bins  # one block of bins x bins cells per latent
    mi = np.empty((d, v.shape[1]))
    for k in range(v.shape[1]):
        joint = np.bincount((offsets + z * bins + v[:, k : k + 1]).ravel(), minlength=d * bins * bins)
        joint = joint.reshape(d, bins, bins)
        mi[:, k] = _plug_in_entropy(joint.sum(axis=2), 1) + _plug_in_entropy(joint[0].sum(axis=0), 0)
        mi[:, k] -= _plug_in_entropy(joint, (1, 2))
    return mi


def group_permutation(groups: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Indices that send the samples of each group to those of another group of the same size (a random
    matching of the groups of each size), in random order within it."""
    if len(np.unique(groups)) == len(groups):  # every sample its own group: a plain permutation
        return rng.permutation(len(groups))
    order = np.argsort(groups, kind="stable")
    labels, starts, sizes = np.unique(groups[order], return_index=True, return_counts=True)
    blocks = [order[start : start + size] for start, size in zip(starts, sizes, strict=True)]
    target = np.arange(len(labels))
    for size in np.unique(sizes):
        same = np.flatnonzero(sizes == size)
        target[same] = rng.permutation(same)
    permutation = np.empty(len(groups), dtype=np.int64)
    for block, other in zip(blocks, target, strict=True):
        permutation[block] = rng.permutation(blocks[other])
    return permutation


def normalized_mutual_information(
    latents: np.ndarray | torch.Tensor,
    factors: np.ndarray | torch.Tensor,
    groups: np.ndarray | None = None,
    estimation: Estimation = Estimation(),
) -> np.ndarray:
    """NMI `[D, F]` adjusted for chance: (I - E0[I]) / (H(v) - E0[I]) per entry, E0 the mean of the plug-in
    estimate over `estimation.permutations` group permutations (`group_permutation`; `groups` `[N]`, e.g.
    the episode of each sample; None: every sample its own). Entries that do not exceed the null mean by
    the normal quantile of `alpha / (D F)` times the null's standard deviation are 0 (`alpha=1` keeps every
    entry above the null mean); so are the columns of constant factors."""
    bins, alpha, permutations = estimation.bins, estimation.alpha, estimation.permutations
    if not 0 < alpha <= 1:
        raise ValueError(f"alpha must lie in (0, 1], got {alpha}")
    if permutations < 2:
        raise ValueError(f"permutations must be at least 2, got {permutations}")
    z, v = discretize(latents, bins), discretize(factors, bins)
    if len(z) != len(v) or 0 in z.shape or 0 in v.shape:
        raise ValueError(f"expected latents [N, D] and factors [N, F] with N, D, F > 0, got {z.shape} and {v.shape}")
    groups = np.arange(len(z)) if groups is None else np.asarray(groups)
    rng = np.random.default_rng(estimation.seed)
    observed = mutual_information(z, v, bins)
    null = np.stack([mutual_information(z, v[group_permutation(groups, rng)], bins) for _ in range(permutations)])
    chance, spread = null.mean(axis=0), null.std(axis=0, ddof=1)
    critical = 0.0 if alpha == 1 else NormalDist().inv_cdf(1 - alpha / observed.size)
    excess, factor_entropy = observed - chance, entropy(v, bins)
    kept = (excess > critical * spread) & (excess > 0) & (factor_entropy > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(kept, np.minimum(excess / (factor_entropy - chance), 1.0), 0.0)


def active_latents(
    latents: np.ndarray | torch.Tensor, nmi: np.ndarray, min_range_fraction: float = MIN_RANGE_FRACTION
) -> np.ndarray:
    """Mask `[D]` of the latents that count in InfoM and InfoC: range above `min_range_fraction` of the
    largest (Hsu et al.; 0 turns it off) and some information about a factor (a nonzero NMI entry)."""
    values = as_numpy(latents)
    ranges = values.max(axis=0) - values.min(axis=0)
    return (ranges > min_range_fraction * ranges.max()) & (nmi.sum(axis=1) > 0)


def mig(nmi: np.ndarray) -> float:
    """Mutual Information Gap (Chen et al. 2018): mean over the columns (factors) of NMI `[D, F]` of the
    largest entry minus the second largest (0 for a second latent when D is 1)."""
    if nmi.shape[1] == 0:
        return 0.0
    ordered = -np.sort(-np.vstack([nmi, np.zeros((1, nmi.shape[1]))]), axis=0)
    return float((ordered[0] - ordered[1]).mean())


def _concentration(nmi: np.ndarray, others: int) -> float:
    """Mean over the rows with information of max / sum of the row, rescaled so that 1/others (spread
    evenly over `others` entries) gives 0 and 1 (all in one entry) gives 1; 1 when `others` is 1."""
    totals = nmi.sum(axis=1)
    rows = totals > 0
    if not rows.any():
        return 0.0
    if others == 1:
        return 1.0
    ratio = float((nmi[rows].max(axis=1) / totals[rows]).mean())
    return (ratio - 1 / others) / (1 - 1 / others)


def infom(nmi: np.ndarray) -> float:
    """InfoM (Hsu et al. 2023): how much each latent (row of NMI `[D, F]`, active ones only) is about one factor."""
    return _concentration(nmi, nmi.shape[1])


def infoc(nmi: np.ndarray) -> float:
    """InfoC (Hsu et al. 2023): how much each factor (column of NMI `[D, F]`, active latents only) is in one latent."""
    return _concentration(nmi.T, nmi.shape[0])


def duplicate_factors(
    factors: np.ndarray | torch.Tensor,
    groups: np.ndarray | None = None,
    estimation: Estimation = Estimation(),
    threshold: float = 0.95,
) -> np.ndarray:
    """Index `[F]` of the earlier factor that each factor duplicates (each determines the other: NMI of
    the two, both ways, at least `threshold`), or -1. The metrics assume distinct factors: one latent
    that encodes two copies of a factor would look half as modular."""
    values = as_numpy(factors)
    nmi = normalized_mutual_information(values, values, groups, estimation)
    duplicate = np.full(values.shape[1], -1)
    for k in range(values.shape[1]):
        for earlier in range(k):
            if duplicate[earlier] < 0 and min(nmi[earlier, k], nmi[k, earlier]) >= threshold:
                duplicate[k] = earlier
                break
    return duplicate


@dataclass
class Scores:
    """The metrics of one representation on one set of samples, and what they were computed from."""

    nmi: np.ndarray
    """`[D, F]` normalised mutual information of every latent with every factor."""
    active: np.ndarray
    """`[D]` latents that count in InfoM and InfoC."""
    scored: np.ndarray
    """`[F]` factors that count: neither constant nor a duplicate of an earlier one."""
    constant: np.ndarray
    """`[F]` factors with zero entropy over the samples."""
    duplicate_of: np.ndarray
    """`[F]` index of the factor each one duplicates, or -1."""
    mig: float
    infom: float
    infoc: float


def score(
    latents: np.ndarray | torch.Tensor,
    factors: np.ndarray | torch.Tensor,
    groups: np.ndarray | None = None,
    estimation: Estimation = Estimation(),
    min_range_fraction: float = MIN_RANGE_FRACTION,
) -> Scores:
    """MIG, InfoM and InfoC of `latents` `[N, D]` against `factors` `[N, F]` (samples in `groups`, e.g.
    episodes), with the NMI matrix."""
    nmi = normalized_mutual_information(latents, factors, groups, estimation)
    constant = entropy(discretize(factors, estimation.bins), estimation.bins) == 0
    duplicate_of = duplicate_factors(factors, groups, estimation)
    scored = ~constant & (duplicate_of < 0)
    active = active_latents(latents, nmi[:, scored], min_range_fraction)
    pruned = nmi[np.ix_(active, scored)]
    return Scores(nmi, active, scored, constant, duplicate_of, mig(nmi[:, scored]), infom(pruned), infoc(pruned))
