"""Bad input raises a clear ValueError/TypeError that names the argument."""

from __future__ import annotations

import numpy as np
import pytest

import gibloss
from gibloss.reduction import KernelPCAReducer, PCAReducer

X = np.random.default_rng(0).normal(size=(20, 3))
Y = np.arange(20) % 2
LOGITS = np.random.default_rng(1).normal(size=(20, 2))


@pytest.mark.parametrize(
    "call, exc, match",
    [
        (lambda: gibloss.mutual_information(X, Y[:10]), ValueError, "same number of samples"),
        (lambda: gibloss.gib(X[:5], LOGITS, Y), ValueError, "same number of samples"),
        (
            lambda: gibloss.mutual_information(np.array([[np.nan], [1.0]]), Y[:2]),
            ValueError,
            r"`a` contains 1 NaN",
        ),
        (lambda: gibloss.mutual_information(X, np.full(20, np.inf)), ValueError, "`b` contains"),
        (lambda: gibloss.entropy(np.array([1.0])), ValueError, "at least 2 samples"),
        (lambda: gibloss.entropy(np.zeros((3, 2, 2))), ValueError, r"shape \(n,\) or \(n, d\)"),
        (lambda: gibloss.entropy(np.array(["a", "b"])), TypeError, "numeric"),
        (lambda: gibloss.entropy("abc"), TypeError, "numpy array or a torch tensor"),
        (
            lambda: gibloss.mutual_information(X, Y, weights=-np.ones(20)),
            ValueError,
            "non-negative",
        ),
        (
            lambda: gibloss.mutual_information(X, Y, weights=np.full(20, np.nan)),
            ValueError,
            "`weights` contains NaN",
        ),
        (lambda: gibloss.mutual_information(X, Y, weights=np.ones(3)), ValueError, "`weights`"),
        (
            lambda: gibloss.mutual_information(X, Y, weights=np.zeros(20)),
            ValueError,
            "positive sum",
        ),
        (lambda: gibloss.gib(X, LOGITS, Y.astype(float)), TypeError, "`y` must hold integer"),
        (lambda: gibloss.gib(X, LOGITS, Y + 5), ValueError, r"`y` labels must lie in \[0, 2\)"),
        (lambda: gibloss.gib(X, LOGITS, Y, beta=0), ValueError, "`beta`"),
        (lambda: gibloss.gib(X, LOGITS, Y, pmi="pmi"), ValueError, "`pmi`"),
        (lambda: gibloss.gib(X, LOGITS, Y, z_code="bogus"), ValueError, "`z_code`"),
        (lambda: gibloss.gib(X, LOGITS, Y, q="joint"), ValueError, "`q`"),
        (lambda: gibloss.gib(X, LOGITS, Y, sampling="bootstrap"), ValueError, "`sampling`"),
        (lambda: gibloss.gib(X, LOGITS, Y, variant="pid"), ValueError, "`variant`"),
        (lambda: gibloss.synergy(X, Y, kind="pid"), ValueError, "`kind`"),
        (lambda: gibloss.gib(X, LOGITS, Y.reshape(10, 2)), ValueError, r"`y` must have shape"),
        (lambda: PCAReducer(n_components=0), ValueError, "n_components"),
        (lambda: PCAReducer(n_components=5).fit(X), ValueError, "fewer than n_components"),
        (lambda: PCAReducer(2).transform(X), RuntimeError, "not fitted"),
        (lambda: PCAReducer(2).fit(X).transform(X[:, :2]), ValueError, "fitted on 3"),
        (lambda: KernelPCAReducer(2, gamma=-1.0), ValueError, "gamma"),
    ],
)
def test_bad_input_is_named(call, exc, match) -> None:
    with pytest.raises(exc, match=match):
        call()


def test_torch_labels_validated() -> None:
    torch = pytest.importorskip("torch")
    with pytest.raises(TypeError, match="`y` must hold integer"):
        gibloss.gib(torch.randn(20, 3), torch.randn(20, 2), torch.rand(20))
