"""GIB-regularised versus plain training: does training with GIBLoss change robustness?

The paper only *measures* GIB and links its complexity to adversarial vulnerability (Fig. 7). This
recipe trains the same model, with the same seeds and data order, under each setting:

* plain cross-entropy;
* ``GIBLoss`` (either surrogate, a sweep of the weight: dose and response);
* label smoothing and a confidence penalty: what any regulariser of output confidence does, so that
  a GIB effect can be told from it;
* FGSM adversarial training, the positive control: it is known to raise robustness, so the study
  shows it can see an effect.

It monitors information planes for all of them and saves the trained models;
``evaluation/robustness.py`` then measures clean, FGSM, PGD (with restarts) and, on a subset, the
gradient-free Square attack, and writes the report. ``make demo`` runs both.

Model and data. ``--dataset mnist`` (default): the appendix E.6 tanh network, Adam lr 1e-3,
batch 128; GIB features = PCA-16 of the pixels fitted once on the training set and served beside
each batch. Offline it runs on scikit-learn's digits (64-1024-20-20-20-10; the
embedded default and ``make demo``); with ``--data-dir`` holding MNIST idx files it takes 784
inputs. ``--dataset cifar10``: ResNet-20 (normalisation inside the model), SGD lr 0.1, momentum
0.9, weight decay 5e-4, crops and flips (the features describe the un-augmented image), GIB
features = KPCA-50 (RBF, gamma = 1/3072) fitted once on at most 5000 training images; CIFAR-10
batches from ``--data-dir``, else the digit-derived stand-in. Models take flattened inputs in
[0, 1] in both cases.

Run: ``accelerate launch recipes/regularised_vs_plain.py [--quick]``, then
``python evaluation/robustness.py runs/regularised_vs_plain``.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F

import gibloss
from gibloss import GIBLoss
from gibloss.data import Dataset, cifar10, mnist
from gibloss.experiment import Recipe, recipe_parser, train_monitored
from gibloss.models import CIFAR10_MEAN, CIFAR10_STD, Normalized, cifar_resnet, crop_flip, mlp

PAPER = {
    "dataset": "mnist",
    "settings": [
        "plain",
        "gaussian_copula:0.3",
        "gaussian_copula:1.0",
        "label_smoothing:0.1",
        "confidence:0.1",
        "confidence:0.3",
        "fgsm_train:0.1",
    ],
    "hidden": [1024, 20, 20, 20],
    "epochs": 30,
    "batch_size": 128,
    "optimizer": None,  # resolved from the dataset (see resolve_optimizer)
    "lr": None,
    "pca_components": 16,
    "bins": 30,
    "measure_every": 5,
    "seeds": [0, 1, 2, 3, 4],
}
QUICK = {
    "settings": ["plain", "gaussian_copula:1.0", "confidence:0.3", "fgsm_train:0.1"],
    "epochs": 4,
    "measure_every": 2,
    "seeds": [0, 1],
}

#: The kinds of setting, ``"<kind>:<value>"`` (``"plain"`` has no value):
#: GIBLoss with either surrogate (value = weight), label smoothing (value = smoothing), the
#: confidence penalty of Pereyra et al. 2017, cross-entropy minus value x the softmax entropy,
#: and FGSM adversarial training (value = eps; half clean, half adversarial loss), the positive
#: control: a setting known to raise robustness.
KINDS = ("plain", "gaussian_copula", "soft_binning", "label_smoothing", "confidence", "fgsm_train")


def parse_setting(setting: str) -> tuple[str, float]:
    """``"plain"`` or ``"<kind>:<value>"`` with a kind of :data:`KINDS`."""
    if setting == "plain":
        return "plain", 0.0
    kind, _, value = setting.partition(":")
    if kind not in KINDS[1:] or not value:
        raise ValueError(f"a setting is 'plain' or '<kind>:<value>' with kind in {KINDS[1:]}, "
                         f"got {setting!r}")
    v = float(value)
    if not (math.isfinite(v) and v >= 0):
        raise ValueError(f"the value of setting {setting!r} must be a non-negative number")
    return kind, v


def make_loss(setting: str, n_in: int) -> Callable[..., torch.Tensor]:
    """``loss_fn(model, rows, labels)`` of one setting; rows are ``[pixels | GIB features]``."""
    kind, value = parse_setting(setting)
    surrogate = kind in ("gaussian_copula", "soft_binning")
    estimator = "binning" if kind == "soft_binning" else kind  # the setting names the relaxation
    gib = GIBLoss(estimator=estimator, weight=value) if surrogate and value > 0 else None

    def loss_fn(m: torch.nn.Module, xb: torch.Tensor, yb: torch.Tensor) -> torch.Tensor:
        x = xb[:, :n_in]
        if kind == "fgsm_train":
            net = getattr(m, "module", m)  # craft outside DDP's hooks; only x's gradient is used
            xr = x.detach().requires_grad_(True)
            (g,) = torch.autograd.grad(F.cross_entropy(net(xr), yb), xr)
            x_adv = (x + value * g.sign()).clamp(0.0, 1.0).detach()
            # one forward over clean and adversarial rows: one graph for DDP to reduce
            return F.cross_entropy(m(torch.cat([x, x_adv])), torch.cat([yb, yb]))
        logits = m(x)
        if kind == "label_smoothing":
            return F.cross_entropy(logits, yb, label_smoothing=value)
        loss = F.cross_entropy(logits, yb)
        if kind == "confidence":
            entropy = -(F.softmax(logits, 1) * F.log_softmax(logits, 1)).sum(1).mean()
            return loss - value * entropy
        if gib is not None:
            return loss + gib(xb[:, n_in:], logits, yb)
        return loss

    return loss_fn


def load(cfg: dict) -> tuple[Dataset, torch.Tensor, torch.Tensor]:
    """The data, flattened train and test inputs in [0, 1]."""
    data = cifar10(cfg["data_dir"]) if cfg["dataset"] == "cifar10" else mnist(cfg["data_dir"])
    return data, data.x_train.flatten(1), data.x_test.flatten(1)


def build_model(cfg: dict, n_in: int) -> torch.nn.Module:
    """The compared model; it takes flattened inputs in [0, 1]."""
    if cfg["dataset"] == "cifar10":
        return torch.nn.Sequential(
            torch.nn.Unflatten(1, (3, 32, 32)),
            Normalized(cifar_resnet(20), CIFAR10_MEAN, CIFAR10_STD),
        )
    return mlp([n_in, *cfg["hidden"], 10], "tanh")


def ib_layer(cfg: dict) -> str:
    """The monitored representation: the last 20-unit layer of the MLP, the ResNet's logits."""
    return "output" if cfg["dataset"] == "cifar10" else str(2 * len(cfg["hidden"]) - 1)


def features(cfg: dict, x_train: torch.Tensor) -> torch.Tensor:
    """GIB features of every training row, from a reducer fitted once."""
    if cfg["dataset"] == "cifar10":
        red = gibloss.KernelPCAReducer(50, gamma=1.0 / x_train.shape[1], max_fit_samples=5000)
        red.fit(x_train[:5000])
        parts = [red.transform(chunk) for chunk in x_train.split(5000)]
        return torch.as_tensor(np.concatenate(parts), dtype=torch.float32)
    pca = gibloss.PCAReducer(cfg["pca_components"]).fit(x_train)
    return torch.as_tensor(pca.transform(x_train), dtype=torch.float32)


def resolve_optimizer(cfg: dict) -> None:
    """Record the optimiser that trains: Adam 1e-3 on MNIST, SGD 0.1 (momentum 0.9, weight
    decay 5e-4) on CIFAR-10."""
    if cfg["dataset"] == "cifar10":
        cfg["optimizer"] = cfg["optimizer"] or "sgd, momentum 0.9, weight decay 5e-4"
        cfg["lr"] = 0.1 if cfg["lr"] is None else cfg["lr"]
    else:
        cfg["optimizer"] = cfg["optimizer"] or "adam"
        cfg["lr"] = 1e-3 if cfg["lr"] is None else cfg["lr"]


def main() -> None:
    parser = recipe_parser(__doc__.splitlines()[0])
    parser.add_argument(
        "--settings",
        nargs="+",
        default=None,
        help='"plain" and/or "<kind>:<value>", kind one of ' + ", ".join(KINDS[1:]),
    )
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument("--dataset", choices=("mnist", "cifar10"), default=None)
    args = parser.parse_args()
    recipe = Recipe("regularised_vs_plain", args, PAPER, QUICK, resolve=resolve_optimizer)
    cfg = recipe.config
    data, x_train, _ = load(cfg)
    recipe.log(f"[regularised_vs_plain] data: {data.description}")
    feats = features(cfg, x_train)
    n_in = x_train.shape[1]
    # rows carry their GIB features beside the pixels: [pixels | features]
    rows = torch.cat([x_train, feats], dim=1)
    last_hidden = ib_layer(cfg)
    cifar = cfg["dataset"] == "cifar10"

    def augment(xb: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        images = crop_flip(xb[:, :n_in].view(-1, 3, 32, 32), gen).flatten(1)
        return torch.cat([images, xb[:, n_in:]], dim=1)

    def optimizer(m: torch.nn.Module) -> torch.optim.Optimizer:
        if cifar:
            return torch.optim.SGD(m.parameters(), lr=cfg["lr"], momentum=0.9, weight_decay=5e-4)
        return torch.optim.Adam(m.parameters(), lr=cfg["lr"])

    (recipe.out / "models").mkdir(parents=True, exist_ok=True)
    for setting in cfg["settings"]:
        loss_fn = make_loss(setting, n_in)
        for seed in cfg["seeds"]:
            model = train_monitored(
                recipe,
                tag=f"{setting}_seed{seed}".replace(":", "-"),
                run=f"{setting}/seed{seed}",
                make_model=lambda: build_model(cfg, n_in),
                make_optimizer=optimizer,
                x=rows,
                y=data.y_train,
                epochs=cfg["epochs"],
                batch_size=cfg["batch_size"],
                loss_fn=loss_fn,
                augment=augment if cifar else None,
                probe=(x_train[:5000], data.y_train[:5000]),
                monitor_kwargs={
                    "layers": [] if cifar else [last_hidden],
                    "features": feats[:5000].numpy(),
                    "estimators": ("binning", "gaussian_copula"),
                    "bins": cfg["bins"],
                    "conventions": ("per_call",),
                },
                measure_every=cfg["measure_every"],
                seed=seed,
            )
            if recipe.is_main:
                path = recipe.out / "models" / f"{setting.replace(':', '-')}_seed{seed}.pt"
                torch.save(model.state_dict(), path)
    if not recipe.is_main:
        return
    records = gibloss.read_records(recipe.metrics_path)
    for setting in cfg["settings"]:
        runs = [f"{setting}/seed{s}" for s in cfg["seeds"]]
        name = setting.replace(":", "-")
        recipe.save_figure(
            gibloss.plot_information_plane(records, "gib", runs=runs, estimator="gaussian_copula"),
            f"gib_{name}.png",
        )
        recipe.save_figure(
            gibloss.plot_information_plane(records, "ib", runs=runs, layers=[last_hidden]),
            f"ib_{name}.png",
        )
    body = [
        "Trained models are in `models/`; `python evaluation/robustness.py "
        f"{recipe.out}` writes `report.md` with clean, FGSM and PGD accuracy."
    ]
    claim = (
        "The paper links high GIB complexity to adversarial vulnerability (Fig. 7) but does "
        "not train with GIB; whether GIB-regularised training is more robust is open."
    )
    recipe.write_summary(claim, body, data.description if data.standin else None)


if __name__ == "__main__":
    main()
