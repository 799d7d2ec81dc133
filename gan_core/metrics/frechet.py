"""The Fréchet distance between two Gaussians, the math of FID (Heusel et al. 2017).

    d^2 = |mu1 - mu2|^2 + tr(S1) + tr(S2) - 2 tr((S1 S2)^(1/2))

pytorch-fid computes the last term with ``scipy.linalg.sqrtm(S1 @ S2)``, a Schur-based square
root of a non-symmetric 2048x2048 matrix (about 10 s on two cores) that can turn complex or
non-finite when a covariance is singular, as it is whenever fewer samples than 2048 are used.
Only the trace of the root is needed, and that is a sum over eigenvalues: with any factor
S1 = A A^T, the eigenvalues of S1 S2 equal those of the symmetric positive semi-definite
A^T S2 A, so tr((S1 S2)^(1/2)) = sum_i sqrt(lambda_i(A^T S2 A)). The factor comes from
LAPACK's pivoted Cholesky (``?pstrf``), which also works on singular PSD matrices and stops at
their numerical rank r, so A is d x r and the eigenvalue problem shrinks to r x r. One symmetric
eigenvalue solve finishes the job in float64, tiny negative eigenvalues (rounding) clamped to
zero. Measured: about 1 s at 2048-d against about 10 s for the sqrtm path (benchmarks/).
"""

from __future__ import annotations

import warnings

import numpy as np
import scipy.linalg as sla
from scipy.linalg import blas, lapack


class FewSamplesWarning(UserWarning):
    """Fewer samples than feature dimensions: the covariance is singular and FID biased high."""


def warn_if_few_samples(n: int, dims: int) -> bool:
    """Warn (and return True) when ``n`` samples cannot give a full-rank ``dims`` covariance."""
    if n < dims:
        warnings.warn(
            f"FID from {n} samples < {dims} feature dimensions: the covariance is singular and "
            "FID is biased upwards; use more samples to compare with published values, or KID",
            FewSamplesWarning,
            stacklevel=3,
        )
        return True
    return False


def _pstrf(sigma: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    """Pivoted Cholesky P^T S P = L L^T of a symmetric PSD matrix (LAPACK ``dpstrf``).

    Returns (L as a square lower-triangular matrix with columns >= rank zeroed, 0-based pivots,
    rank). LAPACK's default tolerance: d * eps * max(diag).
    """
    c, piv, rank, info = lapack.dpstrf(sigma, lower=1, tol=-1.0)
    if info < 0:  # illegal argument: cannot happen for a finite float64 square matrix
        raise ValueError(f"LAPACK dpstrf failed (info {info})")
    lower = np.tril(c)
    lower[:, rank:] = 0.0  # the unfactored trailing block holds no factor
    return lower, piv - 1, int(rank)


def psd_factor(sigma: np.ndarray) -> np.ndarray:
    """A (d x r, r = numerical rank) with A A^T = sigma, for symmetric PSD ``sigma``."""
    lower, piv, rank = _pstrf(np.asarray(sigma, dtype=np.float64))
    a = np.empty((len(lower), rank))
    a[piv] = lower[:, :rank]  # undo the pivoting: rows of P L
    return a


PSD_RTOL = 1e-6
"""How far below zero (relative to the largest variance) a covariance's Schur complement may go
and still count as PSD. A covariance from n samples in float64 is PSD up to ~d * eps * max var
(2048 * 2.2e-16 = 5e-13); a million times that is rounding, not a defect, while a matrix that
is not a covariance is off by the order of its entries."""


def psd_defect(sigma: np.ndarray) -> str | None:
    """None when ``sigma`` is a symmetric positive semi-definite matrix (to PSD_RTOL), else
    what is wrong with it.

    Pivoted Cholesky factors a PSD matrix down to its numerical rank r, leaving a trailing
    Schur complement that is zero up to rounding; for any other symmetric matrix that
    complement has a clearly negative diagonal or entries larger than its diagonal allows
    (|a_ij| <= sqrt(a_ii a_jj) in a PSD matrix). One factorization: the cost of the FID's own.
    """
    s = np.asarray(sigma, dtype=np.float64)
    defect = _cheap_defect(s)
    if defect is not None or not len(s):
        return defect
    lower, piv, rank = _pstrf((s + s.T) / 2)
    return _schur_defect(s, lower, piv, rank)


def _cheap_defect(s: np.ndarray) -> str | None:
    """Shape, finiteness, symmetry and the diagonal: what needs no factorization."""
    if s.ndim != 2 or s.shape[0] != s.shape[1]:
        return f"shape {s.shape}, expected a square matrix"
    if not np.isfinite(s).all():
        return "NaN or infinity"
    scale = float(np.abs(np.diag(s)).max(initial=0.0))
    if scale == 0.0:
        return None if not np.abs(s).max(initial=0.0) else "zero variances with nonzero covariances"
    tol = PSD_RTOL * scale
    asym = float(np.abs(s - s.T).max())
    if asym > tol:
        return f"not symmetric (entries differ by up to {asym:.3g})"
    if float(np.diag(s).min()) < -tol:
        return f"negative variance {float(np.diag(s).min()):.3g}"
    return None


def _schur_defect(s: np.ndarray, lower: np.ndarray, piv: np.ndarray, rank: int) -> str | None:
    """The trailing Schur complement left by a pivoted Cholesky of ``s`` is zero up to
    rounding exactly when ``s`` is PSD (see psd_defect)."""
    if rank == len(s):
        return None
    scale = float(np.abs(np.diag(s)).max(initial=0.0))
    if scale == 0.0:
        return None
    sp = s[np.ix_(piv[rank:], piv[rank:])]
    l21 = lower[rank:, :rank]
    worst = float(np.abs(sp - l21 @ l21.T).max())
    if worst > PSD_RTOL * scale:
        return (f"not positive semi-definite: after its first {rank} of {len(s)} dimensions "
                f"a residual of {worst:.3g} remains (largest variance {scale:.3g})")
    return None


def trace_sqrt_product(sigma1: np.ndarray, sigma2: np.ndarray) -> float:
    """tr((sigma1 @ sigma2)^(1/2)) for symmetric PSD matrices, via eigenvalues (float64)."""
    return _trace_sqrt(sigma1, sigma2)[0]


def _trace_sqrt(sigma1: np.ndarray, sigma2: np.ndarray) -> tuple[float, str | None]:
    """(tr((S1 S2)^(1/2)), what makes S1 or S2 no covariance, or None), from one factorization:
    S1's Schur complement (psd_defect) and the eigenvalues of A^T S2 A, which are >= 0 when S2
    is PSD; a clearly negative one (beyond PSD_RTOL of S2's scale) proves it is not."""
    s1 = np.asarray(sigma1, dtype=np.float64)
    s2 = np.asarray(sigma2, dtype=np.float64)
    s1 = (s1 + s1.T) / 2  # exact symmetry for the symmetric solvers
    s2 = (s2 + s2.T) / 2
    lower, piv, rank = _pstrf(s1)
    defect = _schur_defect(s1, lower, piv, rank)
    if defect:
        return 0.0, f"the first covariance is {defect}"
    d = len(s1)
    if rank == 0:
        return 0.0, None
    if 2 * rank > d:
        # Near full rank: M = L^T (P^T S2 P) L with two triangular products (half a gemm's flops)
        s2p = np.asfortranarray(s2[np.ix_(piv, piv)])
        w = blas.dtrmm(1.0, lower, s2p, side=1, lower=1)  # (d, d) = S2p @ L
        m = blas.dtrmm(1.0, lower, w, side=0, lower=1, trans_a=1)[:rank, :rank]  # L^T @ W
    else:
        a = np.empty((d, rank))
        a[piv] = lower[:, :rank]
        m = a.T @ s2 @ a  # (r, r), the same nonzero eigenvalues as S1 S2
    m = (m + m.T) / 2
    ev = sla.eigvalsh(m, overwrite_a=True, check_finite=False)
    # |eigenvalues of A^T S2 A| are at most max|S2| * max eig(S1) * d; rounding is that x eps
    scale = float(np.abs(np.diag(s2)).max(initial=0.0)) * float(np.abs(np.diag(s1)).max(initial=0.0))
    if len(ev) and ev[0] < -PSD_RTOL * scale * d:
        return 0.0, (f"the second covariance is not positive semi-definite (A^T S2 A has the "
                     f"eigenvalue {ev[0]:.3g})")
    return float(np.sqrt(np.clip(ev, 0.0, None)).sum()), None


def frechet_distance(
    mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray
) -> float:
    """Fréchet distance between N(mu1, sigma1) and N(mu2, sigma2) (FID on Inception stats)."""
    mu1, mu2 = np.atleast_1d(np.asarray(mu1, np.float64)), np.atleast_1d(np.asarray(mu2, np.float64))
    sigma1 = np.atleast_2d(np.asarray(sigma1, np.float64))
    sigma2 = np.atleast_2d(np.asarray(sigma2, np.float64))
    if mu1.shape != mu2.shape or sigma1.shape != sigma2.shape or sigma1.shape != mu1.shape * 2:
        raise ValueError(
            f"Fréchet distance: shapes do not match (mu {mu1.shape} / {mu2.shape}, "
            f"sigma {sigma1.shape} / {sigma2.shape})"
        )
    if not (np.isfinite(mu1).all() and np.isfinite(mu2).all()
            and np.isfinite(sigma1).all() and np.isfinite(sigma2).all()):  # fmt: skip
        raise ValueError("Fréchet distance: statistics contain NaN or infinity")
    for name, sigma in (("first", sigma1), ("second", sigma2)):
        defect = _cheap_defect(sigma)
        if defect:
            raise ValueError(f"Fréchet distance: the {name} covariance is not a covariance ({defect})")
    diff = mu1 - mu2
    tr, defect = _trace_sqrt(sigma1, sigma2)
    if defect:
        raise ValueError(f"Fréchet distance: {defect}; statistics that are no covariances give "
                         "no distance")
    d2 = float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2.0 * tr)
    # Identical statistics give -1e-6-ish from rounding; a distance is never negative.
    return max(d2, 0.0)
