"""Set-level metrics over feature vectors: FID (Fréchet distance) and diversity.

Features [N, D] (one row per dance) are z-scored with the ground-truth (reference) set's mean
and standard deviation before either metric, as google-research/mint and Bailando do.
"""
from __future__ import annotations

import numpy as np
from scipy.spatial.distance import pdist

MIN_STD = 1e-8  # a feature constant over the reference set is centred but not scaled


def _features(feats, what: str) -> np.ndarray:
    feats = np.asarray(feats, dtype=np.float64)
    if feats.ndim != 2:
        raise ValueError(f"{what}: expected features [N, D], got shape {list(feats.shape)}")
    if len(feats) < 2:
        raise ValueError(f"{what}: need at least 2 dances, got {len(feats)}")
    if not np.isfinite(feats).all():
        raise ValueError(f"{what}: features contain NaN or inf")
    return feats


def normalise(feats: np.ndarray, reference_feats: np.ndarray) -> np.ndarray:
    """Z-score [N, D] with the mean and std of reference [M, D]; a constant reference column is only centred."""
    mean, std = reference_feats.mean(axis=0), reference_feats.std(axis=0)
    return (feats - mean) / np.where(std > MIN_STD, std, 1.0)


def _sqrt_psd(matrix: np.ndarray) -> np.ndarray:
    """Square root of a symmetric positive semi-definite matrix (negative rounding clipped)."""
    vals, vecs = np.linalg.eigh(0.5 * (matrix + matrix.T))
    return (vecs * np.sqrt(np.clip(vals, 0.0, None))) @ vecs.T


def frechet_distance(mu1: np.ndarray, cov1: np.ndarray, mu2: np.ndarray, cov2: np.ndarray) -> float:
    """|mu1 - mu2|^2 + tr(C1 + C2 - 2 (C1 C2)^(1/2)) for Gaussians [D], [D, D].

    tr((C1 C2)^(1/2)) is computed as the sum of the square roots of the eigenvalues of the
    symmetric PSD matrix C1^(1/2) C2 C1^(1/2), which has the same spectrum: exact for singular
    covariances (fewer dances than dimensions) and never complex.
    """
    root1 = _sqrt_psd(cov1)
    middle = root1 @ cov2 @ root1
    tr_sqrt = np.sqrt(np.clip(np.linalg.eigvalsh(0.5 * (middle + middle.T)), 0.0, None)).sum()
    diff = mu1 - mu2
    return float(max(diff @ diff + np.trace(cov1) + np.trace(cov2) - 2.0 * tr_sqrt, 0.0))


def _standardised(gen_feats, gt_feats) -> tuple[np.ndarray, np.ndarray]:
    """Generated [N, D] and ground-truth [M, D] features, both z-scored with the ground truth's statistics."""
    gen, gt = _features(gen_feats, "generated features"), _features(gt_feats, "reference features")
    if gen.shape[1] != gt.shape[1]:
        raise ValueError(f"feature sizes differ: generated {gen.shape[1]}, reference {gt.shape[1]}")
    return normalise(gen, gt), normalise(gt, gt)


def fid(gen_feats: np.ndarray, gt_feats: np.ndarray) -> float:
    """Fréchet distance between generated [N, D] and ground-truth [M, D] features, both z-scored
    with the ground truth's statistics (N, M >= 2). 0 for identical sets; lower is better."""
    return _fid(*_standardised(gen_feats, gt_feats))


def _fid(gen: np.ndarray, gt: np.ndarray) -> float:
    """`fid` of features already z-scored with the ground truth's statistics."""
    return frechet_distance(gen.mean(axis=0), np.cov(gen, rowvar=False), gt.mean(axis=0), np.cov(gt, rowvar=False))


def fid_terms(gen_feats: np.ndarray, gt_feats: np.ndarray) -> tuple[float, float]:
    """`fid` in two parts that sum to it: the mean term |mu_gen - mu_gt|^2 (how far the generated
    features sit on average, in ground-truth standard deviations) and the covariance term (how
    far their spread and correlations differ)."""
    gen, gt = _standardised(gen_feats, gt_feats)
    diff = gen.mean(axis=0) - gt.mean(axis=0)
    mean = float(diff @ diff)
    return mean, _fid(gen, gt) - mean


def diversity(feats: np.ndarray, reference_feats: np.ndarray | None = None) -> float:
    """Mean pairwise Euclidean distance of [N, D] features (N >= 2) z-scored with the
    reference set's statistics (or with their own when no reference is given)."""
    feats = _features(feats, "features")
    reference = feats if reference_feats is None else np.asarray(reference_feats, dtype=np.float64)
    if reference.ndim != 2 or reference.shape[1] != feats.shape[1] or len(reference) < 1:
        raise ValueError(f"reference features: expected [M, {feats.shape[1]}], got {list(reference.shape)}")
    return float(pdist(normalise(feats, reference)).mean())


def spread_between(feats: np.ndarray, groups, reference_feats: np.ndarray) -> tuple[float, float]:
    """Where a set's spread lies: the total variance of [N, D] features z-scored with the
    reference set's statistics (summed over the D columns) and the part of it between the
    groups' means (`groups` [N]: a label per row, e.g. its song), the rest lying within groups.
    A dancer who dances every song alike keeps its spread within songs and loses Div between them."""
    feats = _features(feats, "features")
    groups = np.asarray(groups)
    if groups.shape != (len(feats),):
        raise ValueError(f"groups: expected one label per row ({len(feats)}), got shape {list(groups.shape)}")
    z = normalise(feats, np.asarray(reference_feats, dtype=np.float64))
    index = np.unique(groups, return_inverse=True)[1]
    means = np.stack([z[index == k].mean(axis=0) for k in range(index.max() + 1)])[index]   # [N, D] each row's group mean
    return float(z.var(axis=0).sum()), float(((means - z.mean(axis=0)) ** 2).mean(axis=0).sum())
