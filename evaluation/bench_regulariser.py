"""Does GIBLoss regularise what it measures? Dose-response, leverage, matched confidence penalty.

Data: scikit-learn's digits (1437 training rows, 360 held-out rows, stratified, seed 0). The
inputs are pixels; the GIB features are PCA-16 of the pixels, fitted on the training rows.

Models:

* ``mlp``: the tanh MLP shape of the paper's appendix E.6, scaled to digits
  (64-1024-20-20-20-10). Adam (lr 1e-3), batch 128.
* ``free``: free logits, one trainable row per training sample, full batch, Adam (lr 0.05). It
  has no held-out rows: its "held-out" columns repeat the training rows.

Settings, each trained from the same seed:

* ``plain``: cross-entropy only;
* ``<surrogate>/<q>:λ``: cross-entropy + λ · GIBLoss, for both surrogates, ``q`` in
  {"cell", "z"} and λ in {0.1, 0.3, 1, 3, 10};
* ``confidence:β``: a confidence penalty, cross-entropy − β · H(softmax) (Pereyra et al.,
  2017), for a grid of β.

The names are those of the robustness study (``gibloss._recipes.study.parse_setting``: one
grammar for both).

Per run it records, on the held-out rows and on the training rows: the loss's own
``measure`` (the quantity it optimises, bits), the exact argmax- and probs-coded complexities of
the estimator the surrogate relaxes (binning with the loss's bins, or GCMI), accuracy and mean
max-p. For every GIB setting it reports the confidence penalty **at matched mean max-p**: the
complexities of the two β runs whose held-out mean max-p brackets the setting's, interpolated
linearly. That answers whether GIBLoss does anything beyond lowering confidence.

**Leverage**: on the plain model after training, ‖∇_z λ·GIB‖ / ‖∇_z CE‖ at λ = 1 on a training
batch of 128 (for ``free``, on all rows): how much the GIB term can move the outputs against the
task loss.

Records are appended to ``<output-dir>/runs.jsonl`` as each run finishes; a second invocation
with the same output directory skips the runs already there (a killed run loses nothing).

Usage::

    python evaluation/bench_regulariser.py --quick     # 3 seeds, shorter training (~3 min)
    python evaluation/bench_regulariser.py             # 5 seeds
"""

from __future__ import annotations

import argparse
import json
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

import gibloss
from gibloss._recipes.models import mlp
from gibloss._recipes.study import parse_setting
from gibloss.robustness import at_confidence

SURROGATES = {"binning": "binning", "gaussian_copula": "gaussian_copula"}
Q_READINGS = ("cell", "z")
LAMBDAS = (0.1, 0.3, 1.0, 3.0, 10.0)
BETAS = (0.1, 0.3, 1.0, 3.0, 10.0)
BINS = 8  # feature bins of the soft-binning loss and of the exact binning monitor


# --- data -----------------------------------------------------------------------------------


def load_data() -> dict[str, torch.Tensor]:
    """Digits pixels in [0, 1], labels, and PCA-16 GIB features fitted on the training rows."""
    digits = load_digits()
    x = digits.data.astype(np.float32) / 16.0
    idx_tr, idx_te = train_test_split(
        np.arange(len(x)), test_size=360, stratify=digits.target, random_state=0
    )
    pca = gibloss.PCAReducer(n_components=16).fit(x[idx_tr])
    feats = pca.transform(x).astype(np.float64)
    return {
        "x_train": torch.tensor(x[idx_tr]),
        "y_train": torch.tensor(digits.target[idx_tr]),
        "f_train": torch.tensor(feats[idx_tr]),
        "x_test": torch.tensor(x[idx_te]),
        "y_test": torch.tensor(digits.target[idx_te]),
        "f_test": torch.tensor(feats[idx_te]),
    }


# --- the regularisers ------------------------------------------------------------------------


def confidence_penalty(logits: torch.Tensor) -> torch.Tensor:
    """−H(softmax(logits)) averaged over rows (nats): adding β times it rewards low confidence."""
    logp = F.log_softmax(logits, dim=1)
    return (logp.exp() * logp).sum(dim=1).mean()


def bins_of(estimator: str) -> dict[str, int]:
    """BINS for the features and outputs (binning), for the outputs only (Gaussian copula)."""
    return {"bins": BINS} if estimator == "binning" else {"z_bins": BINS}


def make_regulariser(setting: str) -> tuple[Any, float]:
    """``(regulariser(features, logits, y) -> scalar or None, weight)`` for a setting name."""
    kind, value, q = parse_setting(setting)
    if kind == "plain":
        return None, 0.0
    if kind == "confidence":
        return (lambda f, z, y: confidence_penalty(z)), value
    if kind not in SURROGATES:
        raise ValueError(f"the bench trains 'plain', 'confidence' and {tuple(SURROGATES)}")
    return gibloss.GIBLoss(estimator=kind, q=q, **bins_of(kind), weight=1.0), value


def gib_name(surrogate: str, q: str, lam: float) -> str:
    return f"{surrogate}/{q}:{lam:g}"


def is_gib(setting: str) -> bool:
    return parse_setting(setting).kind in SURROGATES


def is_confidence(setting: str) -> bool:
    return parse_setting(setting).kind in ("plain", "confidence")


def settings_grid() -> list[str]:
    grid = ["plain"]
    grid += [gib_name(s, q, lam) for s in SURROGATES for q in Q_READINGS for lam in LAMBDAS]
    grid += [f"confidence:{b:g}" for b in BETAS]
    return grid


# --- training ---------------------------------------------------------------------------------


def train(model_kind: str, setting: str, seed: int, data: dict, quick: bool) -> torch.nn.Module:
    """Train one model with cross-entropy plus the setting's regulariser; return it."""
    torch.manual_seed(seed)
    reg, weight = make_regulariser(setting)
    x, y, f = data["x_train"], data["y_train"], data["f_train"]
    n = len(x)
    if model_kind == "free":
        model = FreeLogits(n)
        opt = torch.optim.Adam(model.parameters(), lr=0.05)
        for _ in range(60 if quick else 150):
            logits = model(torch.arange(n))
            loss = F.cross_entropy(logits, y)
            if reg is not None:
                loss = loss + weight * reg(f, logits, y)
            opt.zero_grad()
            loss.backward()
            opt.step()
        return model
    model = mlp((64, 1024, 20, 20, 20, 10), "tanh")
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    gen = torch.Generator().manual_seed(seed)
    for _ in range(15 if quick else 40):
        order = torch.randperm(n, generator=gen)
        for start in range(0, n, 128):
            b = order[start : start + 128]
            if len(b) < 2:
                continue
            logits = model(x[b])
            loss = F.cross_entropy(logits, y[b])
            if reg is not None:
                loss = loss + weight * reg(f[b], logits, y[b])
            opt.zero_grad()
            loss.backward()
            opt.step()
    return model


class FreeLogits(torch.nn.Module):
    """One free logit row per training sample (the model is the table)."""

    def __init__(self, n: int, k: int = 10) -> None:
        super().__init__()
        self.logits = torch.nn.Parameter(0.01 * torch.randn(n, k))

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        return self.logits[idx]


# --- evaluation -------------------------------------------------------------------------------


def outputs(model: torch.nn.Module, model_kind: str, data: dict, split: str) -> torch.Tensor:
    with torch.no_grad():
        if model_kind == "free":  # no held-out rows: both splits are the training rows
            return model(torch.arange(len(data["x_train"]))).double()
        return model(data[f"x_{split}"]).double()


def evaluate(model: torch.nn.Module, model_kind: str, data: dict) -> dict[str, float]:
    """Every surrogate's measure, both exact codings per estimator, accuracy and mean max-p."""
    out: dict[str, float] = {}
    for split in ("train", "test"):
        sp = "train" if model_kind == "free" else split
        z, y, f = outputs(model, model_kind, data, split), data[f"y_{sp}"], data[f"f_{sp}"]
        p = torch.softmax(z, dim=1)
        out[f"{split}/accuracy"] = float((z.argmax(1) == y).double().mean())
        out[f"{split}/max_p"] = float(p.max(dim=1).values.mean())
        for surrogate, est in SURROGATES.items():
            for q in Q_READINGS:
                loss = gibloss.GIBLoss(estimator=surrogate, q=q, **bins_of(surrogate))
                out[f"{split}/measure/{surrogate}/{q}"] = float(loss.measure(f, z, y).complexity)
            for z_code in ("argmax", "probs"):
                res = gibloss.gib(
                    f.numpy(), z.numpy(), y.numpy(), estimator=est, z_code=z_code, **bins_of(est)
                )
                out[f"{split}/exact/{est}/{z_code}"] = res.complexity
    return out


def leverage(model: torch.nn.Module, model_kind: str, data: dict) -> dict[str, float]:
    """‖∇_z GIB‖ / ‖∇_z CE‖ at λ = 1 on a training batch, per surrogate and reading of Q."""
    n = 1437 if model_kind == "free" else 128
    rows = torch.arange(n)
    f, y = data["f_train"][rows], data["y_train"][rows]
    with torch.no_grad():
        base = model(rows) if model_kind == "free" else model(data["x_train"][rows])
    z = base.detach().double().requires_grad_(True)
    (g_ce,) = torch.autograd.grad(F.cross_entropy(z, y), z)
    out = {}
    for surrogate in SURROGATES:
        for q in Q_READINGS:
            loss = gibloss.GIBLoss(estimator=surrogate, q=q, **bins_of(surrogate))
            (g_gib,) = torch.autograd.grad(loss(f, z, y), z)
            out[f"leverage/{surrogate}/{q}"] = float(g_gib.norm() / g_ce.norm())
    return out


# --- the report ------------------------------------------------------------------------------


def matched_confidence(runs: list[dict], key: str) -> dict[tuple[str, int, str], float]:
    """Per (model, seed, GIB setting): ``key`` of the confidence penalty at the same max-p.

    The two β runs (and plain, as β = 0) whose held-out mean max-p brackets the setting's are
    interpolated linearly; ``nan`` where no pair brackets it
    (:func:`gibloss.robustness.at_confidence`, the matching rule of every study here).
    """
    out = {}
    by_seed: dict[tuple[str, int], list[dict]] = defaultdict(list)
    for r in runs:
        by_seed[(r["model"], r["seed"])].append(r)
    for (model, seed), rs in by_seed.items():
        cp = [(r["metrics"]["test/max_p"], r["metrics"][key]) for r in rs
              if is_confidence(r["setting"])]
        for r in rs:
            if is_gib(r["setting"]):
                out[(model, seed, r["setting"])] = at_confidence(r["metrics"]["test/max_p"], cp)
    return out


def mean_sd(values: list[float]) -> str:
    a = np.asarray([v for v in values if np.isfinite(v)])
    if a.size == 0:
        return "—"
    return f"{a.mean():.3f}±{a.std(ddof=1) if a.size > 1 else 0.0:.3f}"


def report(runs: list[dict]) -> str:
    lines = []
    models = sorted({r["model"] for r in runs})
    for model in models:
        rs = [r for r in runs if r["model"] == model]
        seeds = sorted({r["seed"] for r in rs})
        lines.append(f"\n## model: {model} ({len(seeds)} seeds; mean±sd over seeds)\n")
        lev = [r for r in rs if r["setting"] == "plain"]
        lev_keys = sorted(k for k in lev[0]["metrics"] if k.startswith("leverage/"))
        lines.append("Leverage at λ=1 on the plain model, ‖∇z GIB‖/‖∇z CE‖:")
        for k in lev_keys:
            lines.append(f"  {k[9:]:28s} {mean_sd([r['metrics'][k] for r in lev])}")
        for surrogate, est in SURROGATES.items():
            for q in Q_READINGS:
                m_key = f"test/measure/{surrogate}/{q}"
                cp_m = matched_confidence(rs, m_key)
                cp_a = matched_confidence(rs, f"test/exact/{est}/argmax")
                lines.append(f"\n### {surrogate}, q={q}: held-out (train measure in brackets)")
                lines.append(
                    f"{'setting':24s} {'measure':>13s} {'[train]':>13s} {'exact argmax':>13s} "
                    f"{'exact probs':>13s} {'accuracy':>13s} {'max-p':>13s} "
                    f"{'CP measure':>13s} {'CP argmax':>13s}"
                )
                names = ["plain"] + [gib_name(surrogate, q, lam) for lam in LAMBDAS]
                for name in names:
                    sel = [r for r in rs if r["setting"] == name]
                    if not sel:
                        continue

                    def col(key: str, sel: list[dict] = sel) -> str:
                        return mean_sd([r["metrics"][key] for r in sel])

                    cpm = [cp_m.get((model, r["seed"], name), float("nan")) for r in sel]
                    cpa = [cp_a.get((model, r["seed"], name), float("nan")) for r in sel]
                    lines.append(
                        f"{name:24s} {col(m_key):>13s} {col(m_key.replace('test', 'train')):>13s}"
                        f" {col(f'test/exact/{est}/argmax'):>13s}"
                        f" {col(f'test/exact/{est}/probs'):>13s} {col('test/accuracy'):>13s}"
                        f" {col('test/max_p'):>13s} {mean_sd(cpm):>13s} {mean_sd(cpa):>13s}"
                    )
        lines.append("\nConfidence penalty (β): held-out max-p, accuracy")
        for b in ("plain", *[f"confidence:{b:g}" for b in BETAS]):
            sel = [r for r in rs if r["setting"] == b]
            if sel:
                lines.append(
                    f"  {b:10s} max-p {mean_sd([r['metrics']['test/max_p'] for r in sel])}  "
                    f"accuracy {mean_sd([r['metrics']['test/accuracy'] for r in sel])}"
                )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3 seeds and shorter training")
    parser.add_argument("--seeds", type=int, nargs="+", help="seeds (default 0-4; 0-2 quick)")
    parser.add_argument(
        "--models", nargs="+", default=["mlp", "free"], choices=["mlp", "free"],
        help="which models to train",
    )
    parser.add_argument(
        "--output-dir", type=Path, default=None,
        help="where runs.jsonl and report.md go (default runs/bench_regulariser[_quick])",
    )
    args = parser.parse_args()
    seeds = args.seeds or ([0, 1, 2] if args.quick else [0, 1, 2, 3, 4])
    out_dir = args.output_dir or Path(
        "runs/bench_regulariser_quick" if args.quick else "runs/bench_regulariser"
    )
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "runs.jsonl"
    runs = [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []
    for r in runs:  # records of 0.2.0 named settings `cp@β` and `<surrogate>/<q>@λ`
        r["setting"] = r["setting"].replace("cp@", "confidence:").replace("@", ":")
    done = {(r["model"], r["seed"], r["setting"]) for r in runs}
    data = load_data()
    t0 = time.perf_counter()
    grid = settings_grid()
    for model_kind in args.models:
        for seed in seeds:
            for setting in grid:
                if (model_kind, seed, setting) in done:
                    continue
                model = train(model_kind, setting, seed, data, args.quick)
                metrics = evaluate(model, model_kind, data)
                if setting == "plain":
                    metrics |= leverage(model, model_kind, data)
                rec = {"model": model_kind, "seed": seed, "setting": setting, "metrics": metrics}
                with path.open("a") as fh:
                    fh.write(json.dumps(rec) + "\n")
                runs.append(rec)
            print(f"[{time.perf_counter() - t0:6.0f} s] {model_kind} seed {seed} done", flush=True)
    text = report([r for r in runs if r["seed"] in seeds and r["model"] in args.models])
    (out_dir / "report.md").write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
