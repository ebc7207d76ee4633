"""Input reduction fitted once and reused: PCA and RBF kernel PCA.

GIB needs ``2N + 1`` terms over the input features; images are first reduced to a few dozen
components. The reducer is fitted once (on the probe set) and then applied unchanged every epoch, so
the features mean the same thing across a run.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ._validation import as_array, to_numpy

__all__ = ["KernelPCAReducer", "PCAReducer", "Reducer"]


class Reducer:
    """Base class: ``fit`` once on up to ``max_fit_samples`` rows, then ``transform`` any rows.

    Inputs may be numpy arrays or torch tensors of any shape ``(n, ...)`` (flattened per row);
    ``transform`` returns the same kind (a tensor on the input's device, float32) it was given.
    """

    def __init__(self, n_components: int, max_fit_samples: int, random_state: int | None) -> None:
        if not isinstance(n_components, (int, np.integer)) or n_components < 1:
            raise ValueError(f"`n_components` must be a positive integer, got {n_components!r}")
        if not isinstance(max_fit_samples, (int, np.integer)) or max_fit_samples < 2:
            raise ValueError(f"`max_fit_samples` must be an integer >= 2, got {max_fit_samples!r}")
        self.n_components = int(n_components)
        self.max_fit_samples = int(max_fit_samples)
        self.random_state = random_state
        self._model: Any = None
        self.n_features_in_: int | None = None

    @staticmethod
    def _flat(x: Any, name: str = "x") -> np.ndarray:
        arr = to_numpy(x, name)
        if arr.ndim < 2:
            raise ValueError(
                f"`{name}` must have shape (n, ...) with at least 2 dims, got {arr.shape}"
            )
        arr = arr.reshape(arr.shape[0], -1).astype(np.float64)
        return as_array(arr, name)

    def _make(self, n_rows: int, n_cols: int) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError

    def fit(self, x: Any) -> Reducer:
        """Fit on ``x`` (a random subsample of ``max_fit_samples`` rows when larger)."""
        arr = self._flat(x)
        if arr.shape[1] < self.n_components and isinstance(self, PCAReducer):
            raise ValueError(
                f"`x` has {arr.shape[1]} features, fewer than n_components={self.n_components}"
            )
        if arr.shape[0] > self.max_fit_samples:
            rng = np.random.default_rng(self.random_state)
            arr = arr[rng.choice(arr.shape[0], self.max_fit_samples, replace=False)]
        self._model = self._make(*arr.shape)
        self._model.fit(arr)
        self.n_features_in_ = arr.shape[1]
        return self

    def _transform_tensor(self, x: Any) -> Any:
        """The transform in torch on ``x``'s device, or ``None`` where only numpy can do it."""
        return None

    def transform(self, x: Any) -> Any:
        """Reduce ``x`` to ``(n, n_components)`` features."""
        if self._model is None:
            raise RuntimeError(f"{type(self).__name__} is not fitted; call fit() first")
        out_t = self._transform_tensor(x)
        if out_t is not None:
            return out_t
        arr = self._flat(x)
        if arr.shape[1] != self.n_features_in_:
            raise ValueError(
                f"`x` has {arr.shape[1]} features per row, the reducer was fitted on "
                f"{self.n_features_in_}"
            )
        out = self._model.transform(arr)
        try:
            import torch

            if isinstance(x, torch.Tensor):
                return torch.as_tensor(out, dtype=torch.float32, device=x.device)
        except ImportError:  # pragma: no cover
            pass
        return out

    def fit_transform(self, x: Any) -> Any:
        """``fit(x)`` then ``transform(x)``."""
        return self.fit(x).transform(x)

    def __repr__(self) -> str:
        params = ", ".join(
            f"{k}={v!r}"
            for k, v in vars(self).items()
            if not k.endswith("_") and not k.startswith("_")
        )
        return f"{type(self).__name__}({params})"


class PCAReducer(Reducer):
    """Linear PCA (randomized solver when the fit has more than 1000 rows or columns).

    A fitted PCA is a matrix product: a tensor is transformed in torch on its own device (no
    copy to the host), so a loss with this reducer stays on the device and compiles.

    Parameters
    ----------
    n_components : int, default 50
    max_fit_samples : int, default 10000
        Fit on a random subsample of at most this many rows.
    random_state : int, optional

    Examples
    --------
    >>> import numpy as np
    >>> from gibloss.reduction import PCAReducer
    >>> x = np.random.default_rng(0).normal(size=(200, 20))
    >>> PCAReducer(n_components=5).fit_transform(x).shape
    (200, 5)
    """

    def __init__(
        self, n_components: int = 50, max_fit_samples: int = 10_000, random_state: int | None = 0
    ) -> None:
        super().__init__(n_components, max_fit_samples, random_state)

    def _make(self, n_rows: int, n_cols: int) -> Any:
        from sklearn.decomposition import PCA

        solver = "randomized" if max(n_rows, n_cols) > 1000 else "full"
        return PCA(self.n_components, svd_solver=solver, random_state=self.random_state)

    def _transform_tensor(self, x: Any) -> Any:
        import torch

        if not isinstance(x, torch.Tensor):
            return None
        if x.ndim < 2:
            raise ValueError(
                f"`x` must have shape (n, ...) with at least 2 dims, got {tuple(x.shape)}"
            )
        flat = x.detach().reshape(x.shape[0], -1)
        if flat.shape[1] != self.n_features_in_:
            raise ValueError(
                f"`x` has {flat.shape[1]} features per row, the reducer was fitted on "
                f"{self.n_features_in_}"
            )
        key = (flat.device, torch.float64)
        cached = getattr(self, "_torch_params", None)
        if cached is None or cached[0] != key:
            mean = torch.as_tensor(self._model.mean_, dtype=torch.float64, device=flat.device)
            comps = torch.as_tensor(
                self._model.components_, dtype=torch.float64, device=flat.device
            )
            self._torch_params = (key, mean, comps)
        _, mean, comps = self._torch_params
        return ((flat.to(torch.float64) - mean) @ comps.T).to(torch.float32)


class KernelPCAReducer(Reducer):
    """RBF kernel PCA with ``gamma = 1 / d`` by default (the paper's appendix E.4).

    Exact kernel PCA is quadratic in the number of rows: it is fitted on at most
    ``max_fit_samples`` rows (randomized eigensolver when more than 1000 rows), and every other row
    is projected with ``transform``.

    Parameters
    ----------
    n_components : int, default 50
    gamma : float, optional
        RBF kernel coefficient; ``None`` means ``1 / d`` for ``d`` input features.
    max_fit_samples : int, default 10000
    random_state : int, optional

    Examples
    --------
    >>> import numpy as np
    >>> from gibloss.reduction import KernelPCAReducer
    >>> x = np.random.default_rng(0).normal(size=(300, 16))
    >>> KernelPCAReducer(n_components=8).fit_transform(x).shape
    (300, 8)
    """

    def __init__(
        self,
        n_components: int = 50,
        gamma: float | None = None,
        max_fit_samples: int = 10_000,
        random_state: int | None = 0,
    ) -> None:
        super().__init__(n_components, max_fit_samples, random_state)
        if gamma is not None and not gamma > 0:
            raise ValueError(f"`gamma` must be positive, got {gamma!r}")
        self.gamma = gamma

    def _make(self, n_rows: int, n_cols: int) -> Any:
        from sklearn.decomposition import KernelPCA

        gamma = self.gamma if self.gamma is not None else 1.0 / n_cols
        solver = "randomized" if n_rows > 1000 else "dense"
        return KernelPCA(
            self.n_components,
            kernel="rbf",
            gamma=gamma,
            eigen_solver=solver,
            random_state=self.random_state,
        )
