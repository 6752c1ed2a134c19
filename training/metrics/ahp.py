"""AHP (analytic hierarchy process) weights for the composite evaluation score.

An expert fills a pairwise-comparison matrix ``A`` over the criteria on Saaty's 1-9 scale:
``A[i][j] = 3`` means criterion i matters moderately more than j, and ``A[j][i] = 1/3``. The
weights are the principal right eigenvector of ``A`` normalized to sum 1. Judgements are rarely
perfectly consistent (i > j and j > k by some factors should give i > k by their product); the
consistency index ``CI = (lambda_max - n) / (n - 1)`` measures how far they are, and the
consistency ratio ``CR = CI / RI(n)`` compares it with the mean CI of random matrices (Saaty's
random index). A matrix with ``CR > 0.1`` is rejected: its weights would say more about the
arithmetic slips of the judge than about the judgement.

Example (hand-checkable): ``[[1, 2, 4], [1/2, 1, 2], [1/4, 1/2, 1]]`` is perfectly consistent,
``lambda_max = 3``, ``CI = CR = 0`` and the weights are ``(4, 2, 1) / 7``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np

from kgqa.errors import ConfigError

#: Saaty's random consistency index by matrix size (Saaty 1980; n = 1, 2 are always consistent).
RANDOM_INDEX = {
    1: 0.0,
    2: 0.0,
    3: 0.58,
    4: 0.90,
    5: 1.12,
    6: 1.24,
    7: 1.32,
    8: 1.41,
    9: 1.45,
    10: 1.49,
    11: 1.51,
    12: 1.48,
    13: 1.56,
    14: 1.57,
    15: 1.59,
}
CR_LIMIT = 0.1


@dataclass
class AhpResult:
    """The weights (summing to 1) and the consistency numbers of one comparison matrix."""

    weights: list[float]
    lambda_max: float
    ci: float
    cr: float


def parse_entry(value: float | int | str) -> float:
    """A matrix entry: a number or a fraction written as a string (``"1/3"``)."""
    if isinstance(value, str):
        try:
            return float(Fraction(value.strip()))
        except (ValueError, ZeroDivisionError) as exc:
            raise ValueError(f"{value!r} is not a number or a fraction like '1/3'") from exc
    return float(value)


def weights(matrix: Sequence[Sequence[float | int | str]]) -> tuple[list[float], float, float, float]:
    """``(weights, lambda_max, CI, CR)`` of a positive reciprocal matrix (principal eigenvector).

    Raises:
        ValueError: the matrix is not square, not positive, not reciprocal (within 1%), or larger
            than Saaty's RI table.
    """
    a = np.array([[parse_entry(x) for x in row] for row in matrix], dtype=float)
    n = a.shape[0]
    if a.ndim != 2 or a.shape != (n, n) or n == 0:
        raise ValueError(f"the comparison matrix must be square, got shape {a.shape}")
    if n not in RANDOM_INDEX:
        raise ValueError(f"the comparison matrix has {n} criteria; Saaty's RI table covers 1..15")
    if (a <= 0).any():
        raise ValueError("every comparison must be positive (Saaty's scale is 1/9..9)")
    if not np.allclose(a * a.T, 1.0, rtol=0.01):
        i, j = np.argwhere(~np.isclose(a * a.T, 1.0, rtol=0.01))[0]
        raise ValueError(f"the matrix is not reciprocal: a[{i}][{j}]={a[i, j]:g} but a[{j}][{i}]={a[j, i]:g}")
    eigvals, eigvecs = np.linalg.eig(a)
    k = int(np.argmax(eigvals.real))
    lambda_max = float(eigvals[k].real)
    vec = np.abs(eigvecs[:, k].real)  # Perron vector: one sign; abs() removes eig's arbitrary sign
    w = vec / vec.sum()
    ci = (lambda_max - n) / (n - 1) if n > 2 else 0.0
    ci = max(ci, 0.0)  # lambda_max >= n in exact arithmetic; clamp float noise
    ri = RANDOM_INDEX[n]
    cr = ci / ri if ri else 0.0
    return [float(x) for x in w], lambda_max, float(ci), float(cr)


def checked_weights(
    matrix: Sequence[Sequence[float | int | str]], source: str | Path | None = None, limit: float = CR_LIMIT
) -> AhpResult:
    """:func:`weights`, rejecting an inconsistent or malformed matrix with a ConfigError.

    Args:
        matrix: the pairwise-comparison matrix.
        source: the config file it came from, named in the error.
        limit: the highest acceptable consistency ratio (Saaty: 0.1).

    Raises:
        ConfigError: the matrix is malformed, or its CR exceeds ``limit``.
    """
    where = f"{source}: " if source else ""
    try:
        w, lam, ci, cr = weights(matrix)
    except ValueError as exc:
        raise ConfigError(f"{where}invalid AHP comparison matrix: {exc}") from exc
    if cr > limit:
        raise ConfigError(
            f"{where}the AHP comparison matrix is inconsistent: CR = {cr:.3f} > {limit} "
            f"(lambda_max = {lam:.3f}); revise the pairwise judgements"
        )
    return AhpResult(w, lam, ci, cr)


__all__ = ["CR_LIMIT", "RANDOM_INDEX", "AhpResult", "checked_weights", "parse_entry", "weights"]
