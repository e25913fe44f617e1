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
- Mutual information (`normalized_mutual_information`). The plug-in estimate on the joint histogram with
  the Miller-Madow correction (each entropy + (m - 1) / 2N for its m occupied cells), clipped at 0;
  divided by the factor's Miller-Madow entropy: NMI in [0, 1], 1 when the latent determines the factor.
  The plug-in estimate is biased upwards by about (m_z - 1)(m_v - 1) / 2N for independent variables
  (0.09 nats with 20 x 20 bins and N = 2000), which would make every latent look a little informative
  about every factor and ruin InfoM and InfoC (ratios of one entry to a row or column sum). So an entry
  is kept only if the G-test rejects independence (2 N I ~ chi2((m_z - 1)(m_v - 1)) under independence)
  at the family-wise level `alpha` over all D F entries (Bonferroni); other entries are 0.
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

Factors with zero entropy (constant over the samples) are not scored: their NMI column is 0 and MIG,
InfoM and InfoC leave them out. Conventions where a formula divides by zero: InfoM is 1 with one scored
factor, InfoC is 1 with one active latent (nothing to spread over); InfoC averages over the factors that
some active latent informs; all three are 0 when no latent informs any factor.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from scipy import stats

BINS = 20
"""Bins per continuous variable: the common default (disentanglement_lib's MIG)."""
ALPHA = 0.01
"""Family-wise significance level of the G-tests that keep NMI entries."""
MIN_RANGE_FRACTION = 1 / 20
"""A latent whose range is below this fraction of the largest latent range is inactive (Hsu et al.)."""


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


def _entropy(counts: np.ndarray, n: int, axis: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    """Plug-in entropy (nats) of histograms `counts` over `axis`, and their numbers of occupied cells."""
    p = counts / n
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(counts > 0, -p * np.log(p), 0.0)
    return terms.sum(axis=axis), (counts > 0).sum(axis=axis)


def factor_entropy(factors: np.ndarray | torch.Tensor, bins: int = BINS) -> np.ndarray:
    """Miller-Madow entropy (nats) `[F]` of each discretised factor; 0 exactly for a constant one."""
    codes = discretize(factors, bins)
    n = len(codes)
    counts = np.stack([np.bincount(column, minlength=bins) for column in codes.T])
    entropy, occupied = _entropy(counts, n, (1,))
    return entropy + (occupied - 1) / (2 * n)


def normalized_mutual_information(
    latents: np.ndarray | torch.Tensor, factors: np.ndarray | torch.Tensor, bins: int = BINS, alpha: float = ALPHA
) -> np.ndarray:
    """NMI `[D, F]`: I(z_j; v_k) / H(v_k), both Miller-Madow estimates on the discretised samples; entries
    whose plug-in MI fails the G-test of independence at family-wise level `alpha` (Bonferroni over the
    D F entries; `alpha=1` keeps every positive entry) are 0, and so are the columns of constant factors."""
    if not 0 < alpha <= 1:
        raise ValueError(f"alpha must lie in (0, 1], got {alpha}")
    z, v = discretize(latents, bins), discretize(factors, bins)
    if len(z) != len(v) or 0 in z.shape or 0 in v.shape:
        raise ValueError(f"expected latents [N, D] and factors [N, F] with N, D, F > 0, got {z.shape} and {v.shape}")
    n, d = z.shape
    f = v.shape[1]
    offsets = np.arange(d) * bins * bins  # one block of bins x bins cells per latent
    nmi = np.zeros((d, f))
    for k in range(f):
        joint = np.bincount((offsets + z * bins + v[:, k : k + 1]).ravel(), minlength=d * bins * bins)
        joint = joint.reshape(d, bins, bins)
        h_joint, m_joint = _entropy(joint, n, (1, 2))
        h_z, m_z = _entropy(joint.sum(axis=2), n, (1,))
        h_v, m_v = _entropy(joint[0].sum(axis=0), n, (0,))
        if m_v == 1:
            continue  # a constant factor: no information to share
        plug_in = h_z + h_v - h_joint
        corrected = np.maximum(plug_in - (m_joint - m_z - m_v + 1) / (2 * n), 0.0)
        dof = (m_z - 1) * (m_v - 1)
        critical = 0.0 if alpha == 1 else stats.chi2.isf(alpha / (d * f), np.maximum(dof, 1))
        significant = (dof > 0) & (2 * n * plug_in > critical)
        nmi[:, k] = np.where(significant, corrected / (h_v + (m_v - 1) / (2 * n)), 0.0)
    return nmi


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


def duplicate_factors(factors: np.ndarray | torch.Tensor, bins: int = BINS, threshold: float = 0.95) -> np.ndarray:
    """Index `[F]` of the earlier factor that each factor duplicates (each determines the other: NMI of
    the two, both ways, at least `threshold`), or -1. The metrics assume distinct factors: one latent
    that encodes two copies of a factor would look half as modular."""
    values = as_numpy(factors)
    nmi = normalized_mutual_information(values, values, bins)
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
    bins: int = BINS,
    alpha: float = ALPHA,
    min_range_fraction: float = MIN_RANGE_FRACTION,
) -> Scores:
    """MIG, InfoM and InfoC of `latents` `[N, D]` against `factors` `[N, F]`, with the NMI matrix."""
    nmi = normalized_mutual_information(latents, factors, bins, alpha)
    constant = factor_entropy(factors, bins) == 0
    duplicate_of = duplicate_factors(factors, bins)
    scored = ~constant & (duplicate_of < 0)
    active = active_latents(latents, nmi[:, scored], min_range_fraction)
    pruned = nmi[np.ix_(active, scored)]
    return Scores(nmi, active, scored, constant, duplicate_of, mig(nmi[:, scored]), infom(pruned), infoc(pruned))
