"""GIB-regularised versus plain training: does training with GIBLoss change robustness?

The paper only *measures* GIB and links its complexity to adversarial vulnerability (Fig. 7). This
recipe trains the same model plain and with ``GIBLoss`` — each surrogate, a small sweep of the
weight — with the same seeds and data order, monitors information planes for all of them, and saves
the trained models; ``evaluation/robustness.py`` then measures clean, FGSM and PGD accuracy with
95 % intervals over seeds and writes the report. ``make demo`` runs both.

Model and data. ``--dataset mnist`` (default): the appendix E.6 tanh network, Adam lr 1e-3,
batch 128; GIB features = PCA-16 of the pixels fitted once on the training set and served beside
each batch (design §6). Offline it runs on scikit-learn's digits (64-1024-20-20-20-10; the
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
    "settings": ["plain", "gaussian_copula:0.3", "gaussian_copula:1.0", "soft_binning:1.0"],
    "hidden": [1024, 20, 20, 20],
    "epochs": 30,
    "batch_size": 128,
    "lr": 1e-3,
    "pca_components": 16,
    "bins": 30,
    "measure_every": 5,
    "seeds": [0, 1, 2],
}
QUICK = {
    "settings": ["plain", "gaussian_copula:1.0"],
    "epochs": 4,
    "measure_every": 2,
    "seeds": [0, 1],
}


def parse_setting(setting: str) -> tuple[str, float]:
    """``"plain"`` or ``"<estimator>:<weight>"``."""
    if setting == "plain":
        return "plain", 0.0
    est, _, weight = setting.partition(":")
    return est, float(weight)


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


def main() -> None:
    parser = recipe_parser(__doc__.splitlines()[0])
    parser.add_argument(
        "--settings",
        nargs="+",
        default=None,
        help='"plain" and/or "<gaussian_copula|soft_binning>:<weight>"',
    )
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument("--dataset", choices=("mnist", "cifar10"), default=None)
    args = parser.parse_args()
    recipe = Recipe("regularised_vs_plain", args, PAPER, QUICK)
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
            return torch.optim.SGD(m.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4)
        return torch.optim.Adam(m.parameters(), lr=cfg["lr"])

    (recipe.out / "models").mkdir(parents=True, exist_ok=True)
    for setting in cfg["settings"]:
        est, weight = parse_setting(setting)
        gib = GIBLoss(estimator=est, weight=weight) if weight > 0 else None

        def loss_fn(m, xb, yb, gib=gib):
            logits = m(xb[:, :n_in])
            loss = F.cross_entropy(logits, yb)
            return loss + gib(xb[:, n_in:], logits, yb) if gib is not None else loss

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
                    "estimators": ("binning", "gcmi"),
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
            gibloss.plot_information_plane(records, "gib", runs=runs, estimator="gcmi"),
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
