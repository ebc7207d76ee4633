"""A Boolean lab with exact ground truth: does a GIB term do what no confidence penalty can?

Inputs are bits, and every measurement enumerates the whole cube, so each information term and
each Walsh–Fourier coefficient of the learned ``sign f̂`` is exact.

* **A, a two-sided shortcut** (N = 10). Task S: ``y = x1 xor x2``, trained only on the half-cube
  where ``x3 = y`` (x3 is a perfect linear shortcut), tested on the other half (``x3 != y``).
  Task A, its mirror: ``y = maj(x1, x2, x3)``, trained where ``x4 xor x5 = y`` (a synergistic
  shortcut), tested on the complement. Shifted accuracy: accuracy on the test half.
* **B, does synergy buy robustness (the paper's §3.1 mechanism)?** (N = 9). Teacher
  ``maj(x1..x5)``, trained on a random 25 % of the cube; measured on all 512 points: accuracy,
  total influence ``Σ_i P[f̂(x) != f̂(x ^ e_i)]``, noise sensitivity at δ = 0.05 and 0.1, the
  Walsh weight of degree ≥ 3, and ``I(f̂; ε)`` under the paper's force-to-1 noise.

Arms (an MLP N-64-64-2, full batch, Adam): plain; confidence penalty; label smoothing; L2;
input-gradient penalty; ``GIBLoss`` as it is; the synergy-share term (:class:`gibloss.probes.
SynergyShareLoss`) with each sign on an independent probe (product of the training inputs'
marginals); and the confidence and input-gradient penalties applied on the same probe points, so
that extra unlabeled inputs are not what makes a difference.

Decision rule (printed first in the report): every arm is compared with the confidence penalty at
the same in-distribution confidence (mean max-p on the training rows; the confidence arm's
outcome interpolated linearly over its strength grid, plain included), paired by seed, with a 95 %
t-interval and its half-width. An effect counts only if its interval excludes 0, the probe-applied
controls show none, and it reverses with the sign of the synergy weight.

Run: ``python recipes/boolean_lab.py [--quick] [--resume] [--output-dir DIR]``. Records are
appended to ``records.jsonl`` (one line per run); ``--resume`` skips the runs already recorded.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from scipy import stats

import gibloss
from gibloss.probes import SynergyShareLoss, independent_probe
from gibloss.records import append_record, read_records
from gibloss.robustness import at_confidence

FULL = {
    "seeds": list(range(10)),
    "steps": 200,
    "lr": 1e-2,
    "hidden": 64,
    "probe_rows": 512,
    "strengths": "all",
}
QUICK = {"seeds": [0, 1], "steps": 60, "strengths": "middle"}

#: Arms and their strength grids (the first arm, plain, has none).
ARMS: dict[str, tuple[float, ...]] = {
    "plain": (0.0,),
    "confidence": (0.1, 0.3, 1.0),
    "label_smoothing": (0.05, 0.1, 0.2),
    "l2": (1e-4, 1e-3, 1e-2),
    "input_grad": (0.01, 0.1, 1.0),
    "gib": (0.1, 0.3, 1.0),
    "synergy+": (0.1, 0.3, 1.0),
    "synergy-": (0.1, 0.3, 1.0),
    "probe_confidence": (0.1, 0.3, 1.0),
    "probe_input_grad": (0.01, 0.1, 1.0),
}
TASKS = ("A-S", "A-A", "B")
#: The outcome each task is judged on.
OUTCOME = {"A-S": "shifted_accuracy", "A-A": "shifted_accuracy", "B": "total_influence"}


# --- data: the cube ------------------------------------------------------------------------------


def cube(n_bits: int) -> np.ndarray:
    """All ``2^N`` points, row ``r`` the binary number ``r`` (bit 1 first)."""
    return np.array(list(itertools.product([0, 1], repeat=n_bits)), dtype=np.int64)


def task_data(task: str, seed: int) -> dict[str, Any]:
    """Cube, labels, the training rows and the rows the outcome is read on."""
    if task == "B":
        x = cube(9)
        y = (x[:, :5].sum(1) >= 3).astype(np.int64)
        rng = np.random.default_rng(seed)
        train = np.sort(rng.choice(len(x), size=len(x) // 4, replace=False))
        return {"x": x, "y": y, "train": train, "test": np.arange(len(x))}
    x = cube(10)
    if task == "A-S":
        y = x[:, 0] ^ x[:, 1]
        in_dist = x[:, 2] == y  # x3 copies the label: a linear shortcut
    else:
        y = (x[:, :3].sum(1) >= 2).astype(np.int64)
        in_dist = (x[:, 3] ^ x[:, 4]) == y  # a synergistic shortcut
    return {
        "x": x,
        "y": y,
        "train": np.flatnonzero(in_dist),
        "test": np.flatnonzero(~in_dist),
    }


# --- exact measurements of a learned Boolean function -------------------------------------------


def walsh(signs: np.ndarray) -> np.ndarray:
    """Walsh–Fourier coefficients ``f̂(S) = mean_x f(x) χ_S(x)`` of ``±1`` values on the cube
    (fast Walsh–Hadamard transform; coefficient ``S`` at the index whose bits are ``S``)."""
    a = signs.astype(np.float64).copy()
    h = 1
    while h < len(a):
        a = a.reshape(-1, 2, h)
        a = np.stack([a[:, 0] + a[:, 1], a[:, 0] - a[:, 1]], axis=1).reshape(-1)
        h *= 2
    return a / len(a)


def force_to_one_information(pred: np.ndarray, n_bits: int) -> float:
    """Exact ``I(f̂(X'); ε)``: X uniform, ε = 0 with probability 2/3, else a uniform coordinate
    set to 1 (the paper's appendix E.1 noise)."""
    n = len(pred)
    weights = {0: 2.0 / 3.0, **{i: 1.0 / (3.0 * n_bits) for i in range(1, n_bits + 1)}}
    joint = np.zeros((n_bits + 1, 2))
    for eps, w in weights.items():
        idx = np.arange(n)
        if eps:
            idx = idx | (1 << (n_bits - eps))  # bit eps (1-based, bit 1 first) forced to 1
        joint[eps] += w * np.bincount(pred[idx], minlength=2) / n
    pe, pf = joint.sum(1), joint.sum(0)
    nz = joint > 0
    return float((joint[nz] * np.log2(joint[nz] / np.outer(pe, pf)[nz])).sum())


def measure_function(pred: np.ndarray, n_bits: int) -> dict[str, float]:
    """Exact properties of a Boolean function given on the whole cube."""
    index = np.arange(len(pred))
    influence = [np.mean(pred != pred[index ^ (1 << (n_bits - 1 - i))]) for i in range(n_bits)]
    coef = walsh(1 - 2 * pred)
    degree = np.array([bin(s).count("1") for s in range(len(pred))])
    weight = coef**2
    noise = {
        f"noise_sensitivity_{d}": float(0.5 - 0.5 * np.sum((1 - 2 * d) ** degree * weight))
        for d in (0.05, 0.1)
    }
    syn = gibloss.gib(cube(n_bits), pred, None, q="z", pmi="none")
    return {
        "total_influence": float(np.sum(influence)),
        **noise,
        "walsh_weight_deg3plus": float(weight[degree >= 3].sum()),
        "force_to_one_information": force_to_one_information(pred, n_bits),
        "synergy_share": float(syn.synergy_share),
    }


# --- training ------------------------------------------------------------------------------------


def build_model(n_bits: int, hidden: int) -> torch.nn.Module:
    return torch.nn.Sequential(
        torch.nn.Linear(n_bits, hidden),
        torch.nn.ReLU(),
        torch.nn.Linear(hidden, hidden),
        torch.nn.ReLU(),
        torch.nn.Linear(hidden, 2),
    ).double()


def _input_grad(model: torch.nn.Module, x: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean squared norm of the input gradient of the log-probability of ``target``."""
    xg = x.clone().requires_grad_(True)
    logp = F.log_softmax(model(xg), dim=1).gather(1, target[:, None]).sum()
    (grad,) = torch.autograd.grad(logp, xg, create_graph=True)
    return grad.pow(2).sum(1).mean()


def _entropy(logits: torch.Tensor) -> torch.Tensor:
    logp = F.log_softmax(logits, dim=1)
    return -(logp.exp() * logp).sum(1).mean()


def train_one(
    task: str, arm: str, strength: float, seed: int, cfg: dict[str, Any]
) -> dict[str, Any]:
    """Train one model and measure it exactly; returns one record."""
    data = task_data(task, seed)
    xb, y = data["x"], data["y"]
    n_bits = xb.shape[1]
    x_all = torch.tensor(2.0 * xb - 1.0)  # ±1 inputs
    x_tr, y_tr = x_all[data["train"]], torch.tensor(y[data["train"]])
    probe = independent_probe(x_tr, cfg["probe_rows"], seed=seed)
    torch.manual_seed(seed)
    model = build_model(n_bits, cfg["hidden"])
    opt = torch.optim.Adam(model.parameters(), lr=cfg["lr"])
    synergy = SynergyShareLoss(weight=strength if arm == "synergy+" else -strength)
    gib_loss = gibloss.GIBLoss(weight=strength, validate=False)
    start = time.perf_counter()
    for _ in range(cfg["steps"]):
        logits = model(x_tr)
        smoothing = strength if arm == "label_smoothing" else 0.0
        loss = F.cross_entropy(logits, y_tr, label_smoothing=smoothing)
        if arm == "confidence":
            loss = loss - strength * _entropy(logits)
        elif arm == "l2":
            loss = loss + strength * sum(p.pow(2).sum() for p in model.parameters())
        elif arm == "input_grad":
            loss = loss + strength * _input_grad(model, x_tr, y_tr)
        elif arm == "gib":
            loss = loss + gib_loss(x_tr, logits, y_tr)
        elif arm in ("synergy+", "synergy-"):
            loss = loss + synergy(probe, model(probe))
        elif arm == "probe_confidence":
            loss = loss - strength * _entropy(model(probe))
        elif arm == "probe_input_grad":
            with torch.no_grad():
                guess = model(probe).argmax(1)
            loss = loss + strength * _input_grad(model, probe, guess)
        opt.zero_grad()
        loss.backward()
        opt.step()
    seconds = time.perf_counter() - start
    with torch.no_grad():
        logits = model(x_all)
        prob = torch.softmax(logits, dim=1)
    pred = logits.argmax(1).numpy()
    record = {
        "task": task,
        "arm": arm,
        "strength": strength,
        "seed": seed,
        "train_accuracy": float(np.mean(pred[data["train"]] == y[data["train"]])),
        "confidence": float(prob[data["train"]].max(1).values.mean()),
        "shifted_accuracy": float(np.mean(pred[data["test"]] == y[data["test"]])),
        "accuracy": float(np.mean(pred == y)),
        "seconds": seconds,
        **measure_function(pred, n_bits),
    }
    return record


# --- the decision rule ------------------------------------------------------------------------


def matched_differences(
    records: list[dict[str, Any]], task: str, arm: str, strength: float
) -> tuple[np.ndarray, list[float]]:
    """Per seed: the arm's outcome minus the confidence penalty's outcome interpolated at the
    arm's in-distribution confidence (NaN where that confidence lies outside the confidence
    arm's range: no extrapolation; :func:`gibloss.robustness.at_confidence`). Also the arm's
    confidences."""
    outcome = OUTCOME[task]
    diffs, confs = [], []
    seeds = sorted({r["seed"] for r in records if r["task"] == task})
    for seed in seeds:
        mine = [r for r in records if (r["task"], r["arm"], r["strength"], r["seed"]) ==
                (task, arm, strength, seed)]
        ref = [r for r in records if r["task"] == task and r["seed"] == seed
               and r["arm"] in ("plain", "confidence")]
        if not mine or len(ref) < 2:
            continue
        c = mine[0]["confidence"]
        confs.append(c)
        ref_points = [(r["confidence"], r[outcome]) for r in ref]
        diffs.append(mine[0][outcome] - at_confidence(c, ref_points))
    return np.array(diffs), confs


def interval(values: np.ndarray) -> tuple[float, float, float, int]:
    """Mean, 95 % t-interval and the count of the finite values."""
    v = values[np.isfinite(values)]
    if v.size < 2:
        return (float(v.mean()) if v.size else math.nan), math.nan, math.nan, int(v.size)
    half = float(stats.t.ppf(0.975, v.size - 1) * v.std(ddof=1) / math.sqrt(v.size))
    return float(v.mean()), float(v.mean() - half), float(v.mean() + half), int(v.size)


def verdicts(records: list[dict[str, Any]], task: str) -> dict[tuple[str, float], dict[str, Any]]:
    out = {}
    for arm, grid in ARMS.items():
        if arm in ("plain", "confidence"):
            continue
        for s in grid:
            d, confs = matched_differences(records, task, arm, s)
            if d.size == 0:
                continue
            m, lo, hi, k = interval(d)
            out[(arm, s)] = {
                "mean": m,
                "low": lo,
                "high": hi,
                "n": k,
                "seeds": int(d.size),
                "confidence": float(np.mean(confs)),
                "effect": bool(np.isfinite(lo) and (lo > 0 or hi < 0)),
            }
    return out


def _fmt(v: dict[str, Any]) -> str:
    if not np.isfinite(v["low"]):
        return f"{v['mean']:+.3f} (matched in {v['n']}/{v['seeds']} seeds: no interval)"
    half = (v["high"] - v["low"]) / 2
    return (
        f"{v['mean']:+.3f} [{v['low']:+.3f}, {v['high']:+.3f}] (½-width {half:.3f}; "
        f"matched in {v['n']}/{v['seeds']} seeds)"
    )


def _short(v: dict[str, Any] | None) -> str:
    if v is None:
        return "—"
    if not np.isfinite(v["low"]):
        return f"{v['mean']:+.3f} (n = {v['n']})"
    return f"{v['mean']:+.3f} [{v['low']:+.3f}, {v['high']:+.3f}]"


_TASK_TEXT = {
    "A-S": "shifted accuracy; true rule x1 xor x2, linear shortcut x3",
    "A-A": "shifted accuracy; true rule maj(x1, x2, x3), synergistic shortcut x4 xor x5",
    "B": "total influence; teacher maj(x1..x5), 25 % of the cube",
}


def _answer(records: list[dict[str, Any]]) -> list[str]:
    """The first paragraph: what each arm of interest did, and the rule's verdict."""
    lines = []
    for task in TASKS:
        v = verdicts(records, task)
        if not v:
            continue

        def arm_text(arm: str, v: dict = v) -> str:
            cells = [f"{s:g}: {_short(v.get((arm, s)))}" for s in ARMS[arm] if (arm, s) in v]
            return f"{arm} " + "; ".join(cells)

        eff = {arm: [v[k]["mean"] for k in v if k[0] == arm and v[k]["effect"]] for arm in ARMS}
        plus, minus = eff["synergy+"], eff["synergy-"]
        controls = [a for a in ("probe_confidence", "probe_input_grad") if eff[a]]
        reverses = bool(plus and minus and np.sign(np.mean(plus)) != np.sign(np.mean(minus)))
        if (plus or minus) and reverses and not controls:
            verdict = (
                "the synergy-share term **passes** the rule: an effect beyond the matched "
                "confidence penalty, reversed by the sign, absent for the probe-applied controls."
            )
        elif not (plus or minus):
            verdict = (
                "the synergy-share term has **no effect** beyond the matched confidence penalty."
            )
        else:
            reasons = []
            if controls:
                reasons.append(
                    "the " + " and ".join(c.replace("_", "-applied ", 1) for c in controls)
                    + " penalty on the same probe points shows an effect too"
                )
            if not reverses:
                reasons.append("the other sign does not reverse it")
            verdict = "the synergy-share term does **not** pass the rule: " + "; ".join(
                reasons) + "."
        body = "; ".join(
            arm_text(a) for a in ("synergy+", "synergy-", "probe_confidence", "probe_input_grad",
                                  "gib")
        )
        lines.append(f"**{task}** ({_TASK_TEXT[task]}), Δ against the matched confidence "
                     f"penalty: {body}. By the rule, {verdict}")
    b = [r for r in records if r["task"] == "B"]
    if len(b) > 2:
        r_inf = stats.pearsonr([r["synergy_share"] for r in b], [r["total_influence"] for r in b])
        r_eps = stats.pearsonr(
            [r["synergy_share"] for r in b], [r["force_to_one_information"] for r in b]
        )
        lines.append(
            f"**The paper's mechanism (B).** Over all {len(b)} runs of B, the learned function's "
            f"synergy share correlates with its total influence at r = {r_inf[0]:+.2f} "
            f"(p = {r_inf[1]:.2g}) and with I(f̂; ε) under force-to-1 noise at "
            f"r = {r_eps[0]:+.2f} (p = {r_eps[1]:.2g}). Total influence counts how often the "
            "output flips when one input bit flips; I(f̂; ε) how much the output's distribution "
            "tells about which bit the noise forced. "
            + (
                "Both are exact here and they point opposite ways: more synergy hid the noise "
                "pattern better (the paper's §3.1 reading) while flipping more often."
                if r_inf[0] * r_eps[0] < 0 and max(r_inf[1], r_eps[1]) < 0.05
                else "Both are exact here."
            )
        )
    return lines


def report(records: list[dict[str, Any]], cfg: dict[str, Any], out: Path, wall: float) -> str:
    lines = [
        "# Boolean lab: does a GIB term do what a confidence penalty cannot?",
        "",
        f"{len({r['seed'] for r in records})} seeds, {cfg['steps']} full-batch Adam steps, MLP "
        f"N-{cfg['hidden']}-{cfg['hidden']}-2; every measurement enumerates the cube (exact). "
        f"Training time of the runs in this file (the loops, without the measurements): "
        f"{wall:.0f} s.",
        "",
        "## Answer (decision rule: each arm minus the confidence penalty interpolated at the "
        "arm's training-set confidence, paired by seed, 95 % t-interval; an effect counts only "
        "if its interval excludes 0, the probe-applied controls show none, and it reverses with "
        "the sign of the synergy weight)",
        "",
        *[f"- {line}" for line in _answer(records)],
        "",
    ]
    for task in TASKS:
        rows = [r for r in records if r["task"] == task]
        if not rows:
            continue
        cols = ["train_accuracy", "confidence", "shifted_accuracy", "accuracy", "total_influence",
                "noise_sensitivity_0.1", "walsh_weight_deg3plus", "force_to_one_information",
                "synergy_share"]
        lines += [f"## Task {task}: means over seeds", "",
                  "| arm | strength | " + " | ".join(c.replace("_", " ") for c in cols)
                  + " | matched Δ " + OUTCOME[task].replace("_", " ") + " |",
                  "|---|---|" + "---|" * (len(cols) + 1)]
        v = verdicts(records, task)
        for arm, grid in ARMS.items():
            for s in grid:
                sel = [r for r in rows if r["arm"] == arm and r["strength"] == s]
                if not sel:
                    continue
                means = [np.mean([r[c] for r in sel]) for c in cols]
                matched = _fmt(v[(arm, s)]) if (arm, s) in v else "—"
                lines.append(f"| {arm} | {s:g} | " + " | ".join(f"{m:.3f}" for m in means)
                             + f" | {matched} |")
        lines.append("")
    text = "\n".join(lines)
    (out / "report.md").write_text(text)
    return text


# --- main ---------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="2 seeds, 60 steps, one strength per arm")
    p.add_argument("--seeds", type=int, nargs="+", default=None, help="seeds (default 0-9)")
    p.add_argument("--steps", type=int, default=None, help="full-batch Adam steps (200)")
    p.add_argument("--tasks", nargs="+", choices=TASKS, default=list(TASKS))
    p.add_argument("--output-dir", default="runs/boolean_lab", help="where records go")
    p.add_argument("--resume", action="store_true", help="skip the runs already recorded")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    cfg = {**FULL, **(QUICK if args.quick else {})}
    if args.seeds is not None:
        cfg["seeds"] = args.seeds
    if args.steps is not None:
        cfg["steps"] = args.steps
    out = Path(args.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    path = out / "records.jsonl"
    if path.exists() and not args.resume:
        print(f"{path} exists: pass --resume to continue it, or another --output-dir",
              file=sys.stderr)
        return 2
    (out / "config.json").write_text(json.dumps({**cfg, "tasks": args.tasks}, indent=2))
    done = {(r["task"], r["arm"], r["strength"], r["seed"]) for r in read_records(path)} if (
        path.exists()) else set()
    plan = [
        (task, arm, s, seed)
        for task in args.tasks
        for seed in cfg["seeds"]
        for arm, grid in ARMS.items()
        for s in (grid if cfg["strengths"] == "all" or len(grid) == 1 else (grid[1],))
    ]
    todo = [p for p in plan if p not in done]
    print(f"{len(plan)} runs, {len(plan) - len(todo)} already recorded")
    runner: Callable[..., dict[str, Any]] = train_one
    for k, (task, arm, s, seed) in enumerate(todo, 1):
        rec = runner(task, arm, s, seed, cfg)
        append_record(path, {"kind": "run", **rec})  # append-only: a stop loses one run at most
        if k % 25 == 0 or k == len(todo):
            print(f"  {k}/{len(todo)} runs", flush=True)
    records = [r for r in read_records(path) if r.get("kind") == "run"]
    wall = sum(r["seconds"] for r in records)
    text = report(records, cfg, out, wall)
    print(text.split("\n## Task")[0])
    return 0


if __name__ == "__main__":
    sys.exit(main())
