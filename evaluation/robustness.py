"""Robustness of plain versus regularised models: the report of ``make demo``.

Reads a run folder written by ``recipes/regularised_vs_plain.py`` (``config.json``, ``models/``,
``metrics.jsonl``) and evaluates every model on the held-out set through torchattacks (inputs in
[0, 1], eval mode): clean accuracy, FGSM and PGD (with restarts) over an eps grid, and the
gradient-free Square attack at the key budget on a subset. It writes:

* ``robustness.csv``: one row per model and attack budget;
* ``robust_accuracy.png``: robust accuracy versus eps per setting, mean over seeds with 95 %
  intervals;
* ``report.md``, which leads with a one-paragraph answer to three questions:

  1. does GIB regularisation change robustness, and how large an effect the interval leaves
     room for (the half-width of each paired 95 % interval: an interval, not a power-based
     minimum detectable effect);
  2. can a GIB effect be told from what a confidence regulariser does: each GIB setting is
     compared, seed by seed, with the confidence penalty at its own mean max-p on held-out
     rows, interpolated between the plain and confidence-penalty runs that bracket it and never
     extrapolated (:func:`gibloss.robustness.at_confidence`, the rule of every study here; the
     number of seeds matched is printed);
  3. is a gain real or gradient masking: a gain under FGSM/PGD that Square does not confirm.

  Then the tables: mean and 95 % interval over seeds per setting, with the mean max-p on the
  held-out set; each setting minus plain, paired by seed; and whether complexity tracks
  robustness, as Pearson and partial correlations with the output confidence as covariate.

Usage::

    python evaluation/robustness.py RUN_DIR [--eps 0 0.01 0.02 0.05 0.1 0.2] [--pgd-steps 10]
        [--pgd-restarts 2] [--square-n 200] [--square-queries 300] [--key-eps 0.1]
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from scipy.stats import pearsonr  # noqa: E402
from scipy.stats import t as student_t  # noqa: E402
from tqdm.auto import tqdm  # noqa: E402

import gibloss  # noqa: E402
from gibloss._recipes import study  # noqa: E402
from gibloss.pmi import output_confidence  # noqa: E402
from gibloss.records import estimator_entry  # noqa: E402
from gibloss.robustness import (  # noqa: E402
    at_confidence,
    evaluate_robustness,
    mean_ci,
    paired_ci,
)


def _fmt(m: float, lo: float, hi: float) -> str:
    if math.isnan(lo):
        return f"{m:.3f}"
    return f"{m:.3f} [{lo:.3f}, {hi:.3f}]"


def final_complexities(records: list[dict], last_hidden: str) -> dict[str, dict[str, float]]:
    """The last measurement of each run: exact GIB (binning, GCMI) and IB complexities."""
    out: dict[str, dict[str, float]] = {}
    for r in records:
        if r.get("kind") == "measurement":
            gib_gc = estimator_entry(r["gib"], "gaussian_copula")  # "gcmi" in 0.1 records
            ib_gc = estimator_entry(r["ib"], "gaussian_copula")
            out[r["run"]] = {
                "gib_gcmi": gib_gc["complexity"],
                "gib_binning": r["gib"]["binning"]["complexity"],
                "ib_binning": r["ib"]["binning"][last_hidden]["complexity"],
                "ib_gcmi": ib_gc[last_hidden]["complexity"],
                "train_accuracy": r["accuracy"],
            }
    return out


GIB_KINDS = study.GIB_KINDS


def partial_r(a: list[float], b: list[float], cov: list[float]) -> tuple[float, float]:
    """Partial Pearson correlation of ``a`` and ``b`` given ``cov`` (linear), with its p-value."""
    x, y, z = (np.asarray(v, dtype=float) for v in (a, b, cov))
    if np.ptp(x) == 0 or np.ptp(y) == 0 or len(x) < 4:
        return float("nan"), float("nan")
    design = np.column_stack([np.ones_like(z), z])
    rx = x - design @ np.linalg.lstsq(design, x, rcond=None)[0]
    ry = y - design @ np.linalg.lstsq(design, y, rcond=None)[0]
    if rx.std() == 0 or ry.std() == 0:
        return float("nan"), float("nan")
    r = float(np.corrcoef(rx, ry)[0, 1])
    df = len(x) - 3
    tt = r * math.sqrt(df / max(1e-300, 1 - r * r))
    return r, float(2 * student_t.sf(abs(tt), df))


def mean_max_p(model: torch.nn.Module, x: torch.Tensor) -> float:
    """Mean largest softmax probability on ``x``: the output confidence covariate."""
    model.eval()
    with torch.no_grad():
        logits = model(x).double().numpy()
    return output_confidence(logits, bins=30)["mean_max_p"]  # bins only set extreme_fraction


@dataclass
class Evaluation:
    """Every model of a run folder evaluated: attacks, confidence and complexities per run."""

    settings: list[str]
    seeds: list[int]
    kinds: dict[str, str]
    results: dict[str, dict[int, gibloss.robustness.RobustnessResult]]
    confidence: dict[str, float]  # "<setting>/seed<k>" -> mean max-p on the held-out rows
    complexity: dict[str, dict[str, float]]  # "<setting>/seed<k>" -> final complexities
    rows: list[dict]  # one per model and attack budget (robustness.csv)

    def series(self, setting: str, attack: str, e: float) -> list[float]:
        return [getattr(self.results[setting][s], attack)[e] for s in self.seeds]

    def clean_of(self, setting: str) -> list[float]:
        return [self.results[setting][s].clean for s in self.seeds]

    def conf_of(self, setting: str) -> list[float]:
        return [self.confidence[f"{setting}/seed{s}"] for s in self.seeds]

    def runs(self, without_control: bool = False) -> list[tuple[str, int]]:
        return [
            (st, s)
            for st in self.settings
            for s in self.seeds
            if not (without_control and self.kinds[st] == "fgsm_train")
        ]

    def of_kinds(self, kinds: tuple[str, ...]) -> list[str]:
        return [st for st in self.settings if self.kinds[st] in kinds]


def evaluate(
    run_dir: Path, cfg: dict, data: object, x_test: torch.Tensor, args: argparse.Namespace
) -> Evaluation:
    """Attack every model of the run (FGSM, PGD over the eps grid; Square at the key eps)."""
    n_in = x_test.shape[1]
    records = gibloss.read_records(run_dir / "metrics.jsonl")
    complexity = final_complexities(records, study.ib_layer(cfg))
    seeds, settings = cfg["seeds"], cfg["settings"]
    results: dict[str, dict[int, gibloss.robustness.RobustnessResult]] = {}
    confidence: dict[str, float] = {}
    rows = []
    jobs = [(st, sd) for st in settings for sd in seeds]
    show = not os.environ.get("GIBLOSS_NO_PROGRESS")
    for setting, seed in tqdm(jobs, desc="attacks", disable=not show):
        path = run_dir / "models" / f"{setting.replace(':', '-')}_seed{seed}.pt"
        model = study.build_model(cfg, n_in)
        model.load_state_dict(torch.load(path, map_location="cpu"))
        res = evaluate_robustness(
            model, x_test, data.y_test, args.eps, pgd_steps=args.pgd_steps,
            pgd_restarts=args.pgd_restarts, seed=seed,
        )
        sq = evaluate_robustness(
            model, x_test, data.y_test, args.key_eps, attacks=("square",),
            square_queries=args.square_queries, square_n=args.square_n, seed=seed,
        )
        res.square = sq.square
        res.settings["square"] = {k: sq.settings[k] for k in ("square_queries", "square_n")}
        results.setdefault(setting, {})[seed] = res
        run = f"{setting}/seed{seed}"
        confidence[run] = mean_max_p(model, x_test)
        for attack in ("fgsm", "pgd", "square"):
            for e, acc in getattr(res, attack).items():
                rows.append(
                    {
                        "setting": setting,
                        "seed": seed,
                        "attack": attack,
                        "eps": e,
                        "accuracy": acc,
                        "clean": res.clean,
                        "mean_max_p": confidence[run],
                        **complexity.get(run, {}),
                    }
                )
    kinds = {st: study.parse_setting(st).kind for st in settings}
    return Evaluation(settings, seeds, kinds, results, confidence, complexity, rows)


def write_csv(ev: Evaluation, path: Path) -> None:
    with path.open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(ev.rows[0]))
        w.writeheader()
        w.writerows(ev.rows)


def figure(ev: Evaluation, args: argparse.Namespace, path: Path) -> None:
    """Robust accuracy against eps per setting (mean over seeds, 95 % band), FGSM and PGD."""
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8), constrained_layout=True)
    for ax, attack in zip(axes, ("fgsm", "pgd"), strict=True):
        for setting in ev.settings:
            stats = [mean_ci(ev.series(setting, attack, e)) for e in args.eps]
            m = np.array([s[0] for s in stats])
            ax.plot(args.eps, m, "o-", label=setting, ms=3)
            lo, hi = np.array([s[1] for s in stats]), np.array([s[2] for s in stats])
            if not np.isnan(lo).all():
                ax.fill_between(args.eps, lo, hi, alpha=0.15)
        ax.set_title(f"{attack.upper()}" + (f"-{args.pgd_steps}" if attack == "pgd" else ""))
        ax.set_xlabel("eps (L∞, inputs in [0, 1])")
        ax.set_ylabel("accuracy")
    axes[0].legend(fontsize=7)
    fig.savefig(path, dpi=110)
    plt.close(fig)


Interval = tuple[float, float, float]


def paired_deltas(ev: Evaluation, key: float) -> dict[str, dict[str, Interval]]:
    """Each setting minus plain, paired by seed, at eps ``key`` (empty without plain)."""
    if "plain" not in ev.settings:
        return {}
    deltas = {}
    for setting in ev.settings:
        if setting == "plain":
            continue
        deltas[setting] = {
            "clean": paired_ci(ev.clean_of(setting), ev.clean_of("plain")),
            "max_p": paired_ci(ev.conf_of(setting), ev.conf_of("plain")),
            **{
                attack: paired_ci(
                    ev.series(setting, attack, key), ev.series("plain", attack, key)
                )
                for attack in ("fgsm", "pgd", "square")
            },
            "gib": paired_ci(
                [ev.complexity[f"{setting}/seed{s}"]["gib_gcmi"] for s in ev.seeds],
                [ev.complexity[f"plain/seed{s}"]["gib_gcmi"] for s in ev.seeds],
            ),
        }
    return deltas


def half(d: Interval) -> float:
    return (d[2] - d[1]) / 2 if not math.isnan(d[1]) else float("nan")


def masking(d: dict[str, Interval]) -> bool:
    """A gain under a gradient attack that the gradient-free attack does not confirm."""
    grad_gain = max(d["fgsm"][1], d["pgd"][1]) > 0  # an interval above zero
    return grad_gain and (d["square"][1] <= 0 or d["square"][0] < 0.5 * d["pgd"][0])


def correlations(
    ev: Evaluation, subset: list[tuple[str, int]], k: str, key: float
) -> list[tuple[float, float]]:
    """(r, p) of complexity ``k`` with FGSM and PGD accuracy, then the partial r for PGD."""
    c = [ev.complexity[f"{st}/seed{s}"][k] for st, s in subset]
    out = []
    for attack in ("fgsm", "pgd"):
        acc = [getattr(ev.results[st][s], attack)[key] for st, s in subset]
        if np.ptp(c) > 0 and np.ptp(acc) > 0 and len(c) >= 3:
            r, p = pearsonr(c, acc)
            out.append((float(r), float(p)))
        else:
            out.append((float("nan"), float("nan")))
    pgd = [ev.results[st][s].pgd[key] for st, s in subset]
    out.append(partial_r(c, pgd, [ev.confidence[f"{st}/seed{s}"] for st, s in subset]))
    return out


def matched_effect(
    ev: Evaluation, setting: str, reference: list[str], e: float
) -> tuple[Interval, int]:
    """``setting``'s PGD accuracy minus the reference regulariser's at the same confidence.

    Per seed, the reference runs (plain and ``reference``, a confidence-penalty grid) give
    ``(mean max-p, PGD accuracy)`` points, interpolated at the setting's own mean max-p by
    :func:`gibloss.robustness.at_confidence` (the matching rule of every study here); seeds
    where no pair brackets it are left out. Returns the mean difference with its 95 %
    interval over the matched seeds, and their number.
    """
    refs = (["plain"] if "plain" in ev.settings else []) + reference
    per_ref = [list(zip(ev.conf_of(r), ev.series(r, "pgd", e), strict=True)) for r in refs]
    conf, pgd = ev.conf_of(setting), ev.series(setting, "pgd", e)
    diffs = [
        pgd[i] - at_confidence(conf[i], [points[i] for points in per_ref])
        for i in range(len(ev.seeds))
    ]
    finite = [d for d in diffs if math.isfinite(d)]
    if not finite:
        return (math.nan, math.nan, math.nan), 0
    return mean_ci(finite), len(finite)


def effect(d: Interval) -> str:
    m, lo, hi = d
    if math.isnan(lo):
        return f"{m:+.3f} (one seed: no interval)"
    if lo > 0 or hi < 0:
        return f"{m:+.3f} [{lo:+.3f}, {hi:+.3f}]"
    return f"{m:+.3f} [{lo:+.3f}, {hi:+.3f}], so no effect larger than {max(-lo, hi):.3f}"


def answer(
    ev: Evaluation, deltas: dict[str, dict[str, Interval]], args: argparse.Namespace
) -> list[str]:
    """The report's lead: one sentence or a few per question."""
    key = args.key_eps
    gib_settings = ev.of_kinds(GIB_KINDS)
    conf_settings = ev.of_kinds(("confidence",))
    control = ev.of_kinds(("fgsm_train",))
    out = []
    if deltas and gib_settings:
        parts = [f"{st}: ΔPGD {effect(deltas[st]['pgd'])}" for st in gib_settings]
        out.append(
            f"**1. Does GIB regularisation change robustness?** Against plain training, paired "
            f"by seed ({len(ev.seeds)} seeds, PGD-{args.pgd_steps} at eps {key:g}): "
            + "; ".join(parts) + "."
        )
    if control:
        c = deltas[control[0]]["pgd"]
        seen = not math.isnan(c[1]) and c[1] > 0
        out.append(
            f"The positive control {control[0]} changes PGD accuracy by {effect(c)}: "
            + ("the study can see an effect of that size." if seen else
               "**the study did not detect even the control's effect; it cannot conclude.**")
        )
    if gib_settings and conf_settings:
        # each GIB setting against the confidence penalty at its own held-out confidence, seed
        # by seed (interpolated between the reference runs that bracket it, never extrapolated)
        parts = []
        for g in gib_settings:
            d, n_matched = matched_effect(ev, g, conf_settings, key)
            seeds = f"matched in {n_matched}/{len(ev.seeds)} seeds"
            parts.append(
                f"{g} (mean max-p {np.mean(ev.conf_of(g)):.3f}; {seeds}): ΔPGD "
                + (effect(d) if n_matched else "— (no seed's confidence inside the reference's)")
            )
        out.append(
            "**2. Can it be told from a confidence regulariser?** Against the confidence penalty "
            f"at the same mean max-p (interpolated per seed between plain and "
            f"{', '.join(conf_settings)}): " + "; ".join(parts) + "."
        )
    flagged = [st for st, d in deltas.items() if masking(d)]
    attack = f"{args.square_queries} queries on {args.square_n} rows"
    out.append(
        "**3. Gradient masking?** "
        + (
            f"Flagged: {', '.join(flagged)} (a gain under FGSM/PGD that Square, {attack}, "
            "does not confirm)."
            if flagged
            else "No setting has a gradient-attack gain that the Square attack "
            f"({attack}) fails to confirm."
        )
    )
    runs, no_control = ev.runs(), ev.runs(without_control=True)
    r_all = correlations(ev, runs, "gib_gcmi", key)
    text = (
        f"**4. Does GIB complexity track robustness (the paper's Fig. 7)?** Over all "
        f"{len(runs)} models, the exact GIB complexity (GCMI) correlates with PGD accuracy at "
        f"r = {r_all[1][0]:+.2f} (p = {r_all[1][1]:.3f}), and at partial r = {r_all[2][0]:+.2f} "
        f"(p = {r_all[2][1]:.3f}) given the output confidence"
    )
    if control and len(no_control) >= 4:
        r_nc = correlations(ev, no_control, "gib_gcmi", key)
        text += (
            f"; without the adversarially trained models, r = {r_nc[1][0]:+.2f} "
            f"(p = {r_nc[1][1]:.3f}), partial r = {r_nc[2][0]:+.2f} (p = {r_nc[2][1]:.3f})"
        )
    out.append(
        text + ". The paper reports a negative relation (higher complexity, more vulnerable)."
    )
    return out


def tables(
    ev: Evaluation,
    deltas: dict[str, dict[str, Interval]],
    args: argparse.Namespace,
) -> list[str]:
    """The report's tables: accuracy under attack, paired deltas, correlations."""
    key = args.key_eps
    lines = []
    shown = [e for e in args.eps if e > 0]
    head = (
        "| setting | clean | mean max-p | "
        + " | ".join(f"FGSM {e:g} | PGD {e:g}" for e in shown)
        + f" | Square {key:g} |"
    )
    lines += [head, "|" + "---|" * (4 + 2 * len(shown))]
    for setting in ev.settings:
        cells = [_fmt(*mean_ci(ev.clean_of(setting))), _fmt(*mean_ci(ev.conf_of(setting)))]
        for e in shown:
            cells += [
                _fmt(*mean_ci(ev.series(setting, "fgsm", e))),
                _fmt(*mean_ci(ev.series(setting, "pgd", e))),
            ]
        cells.append(_fmt(*mean_ci(ev.series(setting, "square", key))))
        lines.append(f"| {setting} | " + " | ".join(cells) + " |")

    lines += [
        "",
        f"## Each setting minus plain (paired by seed, eps = {key:g})",
        "",
        "½-width: the half-width of the paired 95 % interval of Δ PGD (an interval, not a "
        "power-based minimum detectable effect): effects much smaller than it cannot be told "
        "from zero by this many seeds.",
        "",
        "| setting | Δ clean | Δ mean max-p | Δ FGSM | Δ PGD | ½-width (PGD) | Δ Square "
        "| Δ exact GIB complexity (GCMI, bits) | gradient masking? |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for setting, d in deltas.items():
        lines.append(
            f"| {setting} | {_fmt(*d['clean'])} | {_fmt(*d['max_p'])} | {_fmt(*d['fgsm'])} "
            f"| {_fmt(*d['pgd'])} | {half(d['pgd']):.3f} | {_fmt(*d['square'])} "
            f"| {_fmt(*d['gib'])} | {'flagged' if masking(d) else 'no'} |"
        )

    lines += [
        "",
        f"## Does complexity track robustness? (eps = {key:g})",
        "",
        "Pearson r over the models, and the partial r given the output confidence (mean max-p "
        "on held-out rows, linear): what the complexity says about robustness beyond "
        "confidence. The adversarially trained models (the positive control) differ from the "
        "rest in both robustness and training, so the correlations are also given without them.",
        "",
        "| complexity (end of training, training set) | models | r with FGSM acc "
        "| r with PGD acc | partial r with PGD acc, given mean max-p |",
        "|---|---|---|---|---|",
    ]

    def cell(rp: tuple[float, float]) -> str:
        return "— (no variation)" if math.isnan(rp[0]) else f"{rp[0]:+.2f} (p = {rp[1]:.3f})"

    runs, no_control = ev.runs(), ev.runs(without_control=True)
    control = ev.of_kinds(("fgsm_train",))
    subsets = [(f"all {len(runs)}", runs)]
    if control and len(no_control) >= 4:
        subsets.append((f"{len(no_control)} without {', '.join(control)}", no_control))
    for label, k in (
        ("GIB, GCMI", "gib_gcmi"),
        ("GIB, binning", "gib_binning"),
        ("IB I(X;T), binning (monitored layer)", "ib_binning"),
        ("IB I(X;T), GCMI (monitored layer)", "ib_gcmi"),
    ):
        for which, subset in subsets:
            lines.append(
                f"| {label} | {which} | "
                + " | ".join(cell(v) for v in correlations(ev, subset, k, key))
                + " |"
            )
    return lines


def report(
    ev: Evaluation,
    args: argparse.Namespace,
    cfg: dict,
    data: object,
    n_in: int,
    n_test: int,
) -> str:
    """The whole report.md: data, answer, tables, figures."""
    key = args.key_eps
    deltas = paired_deltas(ev, key)
    lines = [f"# Robustness: plain versus regularised training ({len(ev.seeds)} seeds)", ""]
    if data.standin:
        lines += [f"> **Data: {data.description}.** All numbers are from this stand-in.", ""]
    else:
        lines += [f"> **Data: {data.description}.**", ""]
    lines += ["## Answer", "", " ".join(answer(ev, deltas, args)), ""]
    optimiser = f"{cfg.get('optimizer') or 'adam'}, lr {cfg.get('lr') or 1e-3:g}"
    model_desc = (
        f"ResNet-20, {cfg['epochs']} epochs, {optimiser}, with crops and flips; GIBLoss "
        "features: KPCA-50 of the images"
        if cfg["dataset"] == "cifar10"
        else f"{n_in}-{'-'.join(map(str, cfg['hidden']))}-10 tanh MLP, {cfg['epochs']} epochs, "
        f"{optimiser}; GIBLoss features: PCA-{cfg['pca_components']} of the pixels"
    )
    lines += [
        "## Accuracy under attack",
        "",
        f"Model: {model_desc}. Evaluation on {n_test} held-out images, inputs in [0, 1], "
        f"eval mode; FGSM, PGD-{args.pgd_steps} with {args.pgd_restarts} random restarts "
        f"(step 2.5·eps/steps) and Square ({args.square_queries} queries, first "
        f"{min(args.square_n, n_test)} rows, eps {key:g}) via torchattacks. Cells: mean over "
        "seeds [95 % t-interval]. Mean max-p: the mean largest softmax probability on the "
        "held-out rows (output confidence).",
        "",
    ]
    lines += tables(ev, deltas, args)
    lines += [
        "",
        "The paper reports that GIB complexity tracks robustness (higher complexity, more "
        "vulnerable: a negative r) and IB does not.",
        "",
        "## Information planes",
        "",
    ]
    for setting in ev.settings:
        name = setting.replace(":", "-")
        lines.append(f"- {setting}: ![GIB](gib_{name}.png) ![IB](ib_{name}.png)")
    lines += [
        "",
        "![robust accuracy](robust_accuracy.png)",
        "",
        "Per-model numbers: `robustness.csv`.",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--eps", type=float, nargs="+", default=[0.0, 0.01, 0.02, 0.05, 0.1, 0.2])
    parser.add_argument("--pgd-steps", type=int, default=10)
    parser.add_argument("--pgd-restarts", type=int, default=2)
    parser.add_argument("--square-n", type=int, default=200, help="rows attacked by Square")
    parser.add_argument("--square-queries", type=int, default=300)
    parser.add_argument(
        "--key-eps",
        type=float,
        default=0.1,
        help="budget at which settings are compared, Square run and correlations computed",
    )
    args = parser.parse_args(argv)
    run_dir = args.run_dir
    cfg_path = run_dir / "config.json"
    if not cfg_path.exists():
        print(
            f"robustness: error: {cfg_path} not found (run recipes/regularised_vs_plain.py first)",
            file=sys.stderr,
        )
        return 2
    cfg = json.loads(cfg_path.read_text())
    if args.key_eps not in args.eps:
        args.eps = sorted({*args.eps, args.key_eps})
    cfg.setdefault("dataset", "mnist")
    data, x_train, x_test = study.load(cfg)

    ev = evaluate(run_dir, cfg, data, x_test, args)
    write_csv(ev, run_dir / "robustness.csv")
    figure(ev, args, run_dir / "robust_accuracy.png")
    text = report(ev, args, cfg, data, x_train.shape[1], len(x_test))
    (run_dir / "report.md").write_text(text + "\n")
    print(text)
    print(f"\nwrote {run_dir / 'report.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
