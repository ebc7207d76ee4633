"""The estimator interface shared by monitors, measures and losses."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ._discrete import dense, plugin_entropy, plugin_mi, row_codes

__all__ = ["Estimator", "FeatureTerms", "effective_size", "uniform_if_none"]


def effective_size(w: np.ndarray) -> float:
    """Kish's effective sample size ``(sum w)^2 / sum w^2`` (``n`` for uniform weights)."""
    return float(w.sum() ** 2 / np.square(w).sum())


def uniform_if_none(n: int, weights: np.ndarray | None) -> np.ndarray:
    """The given (normalised) weights, or uniform weights ``1/n``."""
    return np.full(n, 1.0 / n) if weights is None else weights


@dataclass
class FeatureTerms:
    """The ``2N + 1`` mutual-information terms between a feature matrix and a target.

    Attributes
    ----------
    whole : float
        ``I(X; T)`` for the whole feature matrix.
    single : numpy.ndarray
        ``(N,)``: ``I(X^i; T)``.
    complement : numpy.ndarray
        ``(N,)``: ``I(X^{-i}; T)``.
    diagnostics : dict
        Estimator-specific diagnostics (e.g. unique-row fractions for binning).
    """

    whole: float
    single: np.ndarray
    complement: np.ndarray
    diagnostics: dict[str, Any] = field(default_factory=dict)


class Estimator(ABC):
    """Base class of the exact (non-differentiable) information estimators.

    Subclasses take validated 2-D numpy arrays ``(n, d)`` (integer dtype means already-discrete
    symbols) and optional weights that sum to one, and return values in bits. Public functions such
    as :func:`gibloss.mutual_information` validate inputs and then call these methods.

    A subclass must implement :meth:`entropy` (of a continuous array, under weights); everything
    else follows from it: mutual information between continuous arrays as
    ``H(A) + H(B) - H(A, B)``, against symbols as ``H(A) - sum_c p(c) H(A | c)``, and the
    ``2N + 1`` GIB terms one call at a time. Override :meth:`_mi_continuous`,
    :meth:`_mi_with_symbols` or :meth:`feature_terms` for speed or a better estimate.

    Examples
    --------
    >>> import numpy as np
    >>> import gibloss
    >>> class Gaussian(gibloss.Estimator):
    ...     def entropy(self, a, weights=None):
    ...         cov = np.atleast_2d(np.cov(a.T, aweights=weights))
    ...         return 0.5 * np.log2(np.linalg.det(2 * np.pi * np.e * cov))
    >>> rng = np.random.default_rng(0)
    >>> x = rng.normal(size=(5000, 1))
    >>> y = x + rng.normal(size=(5000, 1))
    >>> round(gibloss.mutual_information(x, y, Gaussian()), 1)  # 0.5 log2(2)
    0.5
    """

    #: short name of the string shortcuts (``"binning"``, ``"kde"``, ``"gaussian_copula"``, ...)
    name: str = "estimator"
    #: whether the estimator counts discrete states (it then has ``bins``, ``codes(a)`` and
    #: ``partitions(x)``): the Miller–Madow correction applies, and IB reads X as the identity
    #: of the input rows
    discrete: bool = False
    #: what ``gib(..., z_code="auto")`` codes model outputs as with this estimator
    default_z_code: str = "argmax"

    def relaxation(self) -> tuple[str, dict[str, Any]] | None:
        """The differentiable surrogate whose hard, no-gradient case this estimator is.

        Returns
        -------
        tuple or None
            ``(estimator, options)`` of :func:`gibloss.functional.gib_terms`, or None when
            the estimator has no relaxation (``gib(..., z_code="soft")`` then raises).
        """
        return None

    @abstractmethod
    def entropy(self, a: np.ndarray, weights: np.ndarray | None = None) -> float:
        """Entropy of ``a`` in bits (differential for continuous estimators)."""

    def mutual_information(
        self, a: np.ndarray, b: np.ndarray, weights: np.ndarray | None = None
    ) -> float:
        """``I(A; B)`` in bits.

        Both symbols: the plug-in value. One side symbols: :meth:`_mi_with_symbols`. Both
        continuous: :meth:`_mi_continuous`.
        """
        a_disc, b_disc = a.dtype.kind in "iu", b.dtype.kind in "iu"
        if a_disc and b_disc:
            return self._discrete_mi(a, b, weights)
        if a_disc:
            a, b = b, a
        if a_disc or b_disc:
            return float(self._mi_with_symbols(a, b, weights))
        return float(self._mi_continuous(a, b, weights))

    def _mi_continuous(self, a: np.ndarray, b: np.ndarray, weights: np.ndarray | None) -> float:
        """``I(A; B)`` for two continuous arrays (default: ``H(A) + H(B) - H(A, B)``, clipped)."""
        h_ab = self.entropy(np.hstack([a, b]), weights)
        return max(float(self.entropy(a, weights) + self.entropy(b, weights) - h_ab), 0.0)

    def _mi_with_symbols(
        self, a: np.ndarray, codes: np.ndarray, weights: np.ndarray | None
    ) -> float:
        """``I(A; C)`` for continuous ``a`` and symbols ``codes``.

        Default, from :meth:`entropy` alone: ``H(A) - sum_c p(c) H(A | C = c)``, clipped to its
        exact bounds ``[0, H(C)]``. Estimators with a batched :meth:`feature_terms` override it
        with that computation's whole term.
        """
        w = uniform_if_none(a.shape[0], weights)
        c, k = row_codes(_dense_columns(codes))
        conditional = 0.0
        for value in range(k):
            rows = c == value
            p_c = float(w[rows].sum())
            if p_c > 0:
                conditional += p_c * self.entropy(a[rows], w[rows] / p_c)
        h_c = plugin_entropy(c, w, k)
        return min(max(float(self.entropy(a, w)) - conditional, 0.0), h_c)

    def feature_terms(
        self, x: np.ndarray, target: np.ndarray, weights: np.ndarray | None = None
    ) -> FeatureTerms:
        """All ``2N + 1`` terms ``I(X; T)``, ``I(X^i; T)``, ``I(X^{-i}; T)``.

        The base implementation calls :meth:`mutual_information` ``2N + 1`` times; estimators
        override it with a batched computation that returns the same numbers (and must, since
        the base :meth:`mutual_information` asks them for the whole term).
        """
        n_features = x.shape[1]
        whole = self.mutual_information(x, target, weights)
        single = np.array(
            [self.mutual_information(x[:, [i]], target, weights) for i in range(n_features)]
        )
        if n_features == 1:
            complement = np.zeros(1)
        else:
            complement = np.array(
                [
                    self.mutual_information(np.delete(x, i, axis=1), target, weights)
                    for i in range(n_features)
                ]
            )
        return FeatureTerms(whole, single, complement)

    def feature_terms_batch(
        self, x: np.ndarray, target: np.ndarray, weights: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The ``2N + 1`` terms under ``B`` measures over the same rows (e.g. bootstrap resamples).

        Parameters
        ----------
        x, target : numpy.ndarray
            As in :meth:`feature_terms`.
        weights : numpy.ndarray
            ``(B, n)`` non-negative weights, each row summing to one.

        Returns
        -------
        whole : numpy.ndarray
            ``(B,)``.
        single, complement : numpy.ndarray
            ``(B, N)``.

        The base implementation calls :meth:`feature_terms` once per measure; the binning
        estimator evaluates all of them in one pass.
        """
        terms = [self.feature_terms(x, target, w) for w in weights]
        return (
            np.array([t.whole for t in terms]),
            np.stack([t.single for t in terms]),
            np.stack([t.complement for t in terms]),
        )

    def discretize(self, a: np.ndarray) -> np.ndarray:
        """Integer codes ``(n, d)`` for ``a``; integer arrays are symbols and kept as they are.

        Estimators that bin override this; the default only accepts symbols.
        """
        if a.dtype.kind not in "iu":
            raise TypeError(
                f"{type(self).__name__} cannot discretise a float array; pass integer symbols"
            )
        return a

    # -- helpers shared by subclasses ------------------------------------------------------------

    @staticmethod
    def _discrete_entropy(a: np.ndarray, weights: np.ndarray | None) -> float:
        codes, k = row_codes(_dense_columns(a))
        return plugin_entropy(codes, weights, k)

    @staticmethod
    def _discrete_mi(a: np.ndarray, b: np.ndarray, weights: np.ndarray | None) -> float:
        ca, ka = row_codes(_dense_columns(a))
        cb, kb = row_codes(_dense_columns(b))
        return plugin_mi(ca, ka, cb, kb, weights)

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in vars(self).items() if not k.startswith("_"))
        return f"{type(self).__name__}({params})"


def _dense_columns(a: np.ndarray) -> np.ndarray:
    """Relabel each integer column to ``0 .. k_j-1``."""
    out = np.empty(a.shape, dtype=np.int64)
    for j in range(a.shape[1]):
        out[:, j], _ = dense(a[:, j])
    return out
