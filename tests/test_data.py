"""Real-format loaders, tested on small files written here in the real formats."""

from __future__ import annotations

import csv
import gzip
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from gibloss._recipes import data


def _write_idx(path: Path, arr: np.ndarray, gz: bool = False) -> None:
    header = bytes([0, 0, 0x08, arr.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in arr.shape)
    payload = header + arr.astype(np.uint8).tobytes()
    if gz:
        with gzip.open(str(path) + ".gz", "wb") as fh:
            fh.write(payload)
    else:
        path.write_bytes(payload)


def test_mnist_idx_files(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    xtr = rng.integers(0, 256, size=(20, 28, 28))
    ytr = rng.integers(0, 10, size=20)
    xte = rng.integers(0, 256, size=(6, 28, 28))
    yte = rng.integers(0, 10, size=6)
    _write_idx(raw / "train-images-idx3-ubyte", xtr)
    _write_idx(raw / "train-labels-idx1-ubyte", ytr, gz=True)
    _write_idx(raw / "t10k-images-idx3-ubyte", xte)
    _write_idx(raw / "t10k-labels-idx1-ubyte", yte)
    ds = data.mnist(tmp_path)
    assert not ds.standin and ds.x_train.shape == (20, 1, 28, 28)
    torch.testing.assert_close(ds.x_train[:, 0], torch.tensor(xtr / 255.0, dtype=torch.float32))
    assert ds.y_test.tolist() == yte.tolist()


def test_mnist_missing_and_corrupt(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="idx files not found"):
        data.mnist(tmp_path)
    bad = tmp_path / "bad-idx"
    bad.write_bytes(b"\x01\x02\x08\x01")
    with pytest.raises(ValueError, match="magic"):
        data.read_idx(bad)


def test_cifar10_python_batches(tmp_path: Path) -> None:
    root = tmp_path / "cifar-10-batches-py"
    root.mkdir()
    rng = np.random.default_rng(1)
    batches = []
    for i in range(1, 3):
        d = rng.integers(0, 256, size=(4, 3072)).astype(np.uint8)
        lab = rng.integers(0, 10, size=4).tolist()
        batches.append((d, lab))
        with (root / f"data_batch_{i}").open("wb") as fh:
            pickle.dump({b"data": d, b"labels": lab}, fh)
    te = rng.integers(0, 256, size=(3, 3072)).astype(np.uint8)
    with (root / "test_batch").open("wb") as fh:
        pickle.dump({b"data": te, b"labels": [1, 2, 3]}, fh)
    ds = data.cifar10(tmp_path)
    assert not ds.standin and ds.x_train.shape == (8, 3, 32, 32)
    expected = np.concatenate([b[0] for b in batches]).reshape(8, 3, 32, 32) / 255.0
    torch.testing.assert_close(ds.x_train, torch.tensor(expected, dtype=torch.float32))
    assert ds.y_test.tolist() == [1, 2, 3]
    with pytest.raises(FileNotFoundError, match="CIFAR-10"):
        data.cifar10(tmp_path / "nothing")


def test_agnews_csv(tmp_path: Path) -> None:
    rows = [
        ("3", "Stocks rally", "Shares rose on Wall Street."),
        ("2", "Cup final", "The team won the match."),
        ("1", "Peace talks", "Ministers met at the border."),
        ("4", "New chip", "Scientists launch a faster processor."),
    ]
    for name in ("train.csv", "test.csv"):
        with (tmp_path / name).open("w", newline="") as fh:
            csv.writer(fh, quoting=csv.QUOTE_ALL).writerows(rows)
    ds = data.agnews(tmp_path, max_length=16)
    assert not ds.standin
    assert ds.y_train.tolist() == [2, 1, 0, 3]
    assert ds.x_train.shape == (4, 16) and int(ds.x_train[0, 0]) == 101
    (tmp_path / "train.csv").write_text('"7","x","y"\n')
    with pytest.raises(ValueError, match="outside 1..4"):
        data.agnews(tmp_path)


def test_standins_say_so() -> None:
    for ds in (
        data.digits(),
        data.cifar10(n_standin=100),
        data.agnews(n_standin=50),
        data.tishby_12bit(),
    ):
        assert ds.standin and ds.description.startswith("STAND-IN")
    t = data.tishby_12bit()
    assert len(t.x_train) + len(t.x_test) == 4096
    assert abs(float(torch.cat([t.y_train, t.y_test]).float().mean()) - 0.5) < 1e-9
