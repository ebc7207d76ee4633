"""Input reduction: fitted once, reused, subsampled above the fit limit."""

from __future__ import annotations

import numpy as np
import pytest

from gibloss.reduction import KernelPCAReducer, PCAReducer


def test_pca_recovers_low_rank_structure(rng) -> None:
    basis = rng.normal(size=(3, 40))
    x = rng.normal(size=(500, 3)) @ basis + 1e-3 * rng.normal(size=(500, 40))
    red = PCAReducer(n_components=3).fit(x)
    z = red.transform(x)
    recon = red._model.inverse_transform(z)
    assert np.abs(recon - x).max() < 0.05


def test_fit_once_then_a_row_maps_the_same_in_any_batch(rng) -> None:
    x = rng.normal(size=(300, 10))
    red = KernelPCAReducer(n_components=4).fit(x)
    alone = red.transform(x[:50])
    among_others = red.transform(np.vstack([x[250:], x[:50]]))[50:]
    np.testing.assert_allclose(alone, among_others, atol=1e-12)  # no refit, no batch statistics
    refit = KernelPCAReducer(n_components=4).fit(x[:50])
    assert np.abs(refit.transform(x[:50]) - alone).max() > 1e-3  # a refit would change them
    assert red._model.gamma == pytest.approx(1 / 10)


def test_subsampled_fit_above_limit(rng) -> None:
    x = rng.normal(size=(1200, 8))
    red = KernelPCAReducer(n_components=5, max_fit_samples=400).fit(x)
    assert red._model.X_fit_.shape[0] == 400
    assert red.transform(x).shape == (1200, 5)


def test_images_and_torch_round_trip(rng) -> None:
    torch = pytest.importorskip("torch")
    imgs = torch.randn(64, 3, 4, 4)
    red = PCAReducer(n_components=6)
    out = red.fit_transform(imgs)
    assert isinstance(out, torch.Tensor) and out.shape == (64, 6) and out.dtype == torch.float32
