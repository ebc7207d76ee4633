"""Speed of ``gibloss.gib`` against the peers and a per-term implementation, in one process.

First, the 2N + 1 terms of the estimators alone (``feature_terms``) against infomeasure, frites
and a per-term ``np.unique`` loop over uint8 codes, one torch thread as the peers run (targets at
N = 50: binning at least 30x the uint8 loop and 35x infomeasure, the Gaussian copula at least 20x
frites). Then the peak tensor memory of ``gib()``. Then, for binning and GCMI at n = 5000
samples, N in {10, 50, 128} features, 10 classes and 30 bins, the script times

* ``gibloss.gib(...)`` — vectorised 2N+1 terms (prefix/suffix codes; one Cholesky per class), and
* a baseline written here: the same Q (``gibloss.build_q``), then each of the 2N+1 terms on its
  own — ``np.unique`` over the binned rows of every subset for binning, one class-conditional
  Gaussian fit (covariances + Cholesky) per subset for GCMI,

checks that both give the same numbers (GCMI may differ by ~1e-3 bits where a class is tiny: the
package decides shrinkage once, at the full dimension, so every subset shares one covariance
model; the loop decides per subset), and prints the times and their ratio. Targets: binning
>= 50x faster than the loop at N = 50 (and about 10 ms); GCMI >= 20x.

It then times bootstrap intervals, ``gib(..., n_boot=B)`` (``--boot``, default 100 resamples),
beside the same call without them. Target: 100 resamples of the binning workload at N = 50 in
under 1 s.

Usage::

    python evaluation/bench_estimators.py [--repeats 5] [--features 10 50 128] [--boot 100]
        [--threads 1] [--no-peers]
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

import numpy as np
import torch
from scipy.special import psi

import gibloss
from gibloss.estimators import BinningEstimator
from gibloss.estimators._discrete import plugin_entropy, plugin_mi
from gibloss.estimators.gcmi import copula_normalize

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _counting import peak_tensor_bytes  # noqa: E402

N_SAMPLES = 5000
N_CLASSES = 10
BINS = 30


def make_data(n_features: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Features with class structure, labels, and the logits of a noisy linear read-out."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, N_CLASSES, size=N_SAMPLES)
    centers = rng.normal(size=(N_CLASSES, n_features))
    x = centers[y] + 1.5 * rng.normal(size=(N_SAMPLES, n_features))
    logits = x @ centers.T + rng.normal(size=(N_SAMPLES, N_CLASSES))
    return x, logits, y


# --- the straightforward per-term baseline ------------------------------------------------------


def _subsets(n_features: int) -> list[list[int]]:
    whole = [list(range(n_features))]
    singles = [[i] for i in range(n_features)]
    comps = [[j for j in range(n_features) if j != i] for i in range(n_features)]
    return whole + singles + comps


def naive_binning(x: np.ndarray, logits: np.ndarray, y: np.ndarray) -> np.ndarray:
    qv = gibloss.build_q(logits, y, z_code="probs", bins=BINS)
    codes = BinningEstimator(bins=BINS).discretize(x)
    kq = int(qv.codes.max()) + 1
    out = []
    for cols in _subsets(x.shape[1]):
        _, inv = np.unique(codes[:, cols], axis=0, return_inverse=True)
        inv = inv.reshape(-1)
        out.append(plugin_mi(inv, int(inv.max()) + 1, qv.codes, kq, qv.weights))
    return np.array(out)


def _gauss_entropy(g: np.ndarray, w: np.ndarray) -> float:
    """Bias-corrected weighted Gaussian entropy (bits) of one subset, fitted from scratch.

    Same model as the package (shrinkage and no bias correction for classes with n_eff <= d + 1),
    written directly.
    """
    n_eff = w.sum() ** 2 / np.square(w).sum()
    mu = (w[:, None] * g).sum(0) / w.sum()
    c = g - mu
    cov = (w[:, None] * c).T @ c / w.sum()
    if n_eff > 1:
        cov *= n_eff / (n_eff - 1)
    d = cov.shape[0]
    small = n_eff <= d + 1
    if small:
        cov = 0.9 * cov + 0.1 * max(np.trace(cov) / d, 1.0) * np.eye(d)
    cov[np.diag_indices(d)] += 1e-6
    chol = np.linalg.cholesky(cov)
    h = np.log(np.diag(chol)).sum() + 0.5 * d * (np.log(2 * np.pi) + 1)
    if not small:
        k = np.arange(1, d + 1)
        h -= d * (np.log(2) - np.log(n_eff - 1)) / 2 + (psi((n_eff - k) / 2) / 2).sum()
    return h / np.log(2)


def naive_gcmi(x: np.ndarray, logits: np.ndarray, y: np.ndarray) -> np.ndarray:
    qv = gibloss.build_q(logits, y, z_code="argmax")
    g = copula_normalize(x)
    w = qv.weights
    classes = np.unique(qv.codes)
    p = np.array([w[qv.codes == c].sum() for c in classes])
    h_q = -(p * np.log2(p)).sum()
    out = []
    for cols in _subsets(x.shape[1]):
        h = _gauss_entropy(g[:, cols], w)
        h_cond = 0.0
        for c, pc in zip(classes, p, strict=True):
            m = qv.codes == c
            h_cond += pc * _gauss_entropy(g[m][:, cols], w[m] / pc)
        out.append(min(max(h - h_cond, 0.0), h_q))
    return np.array(out)


# --- the peers: the same 2N + 1 terms through other libraries, one call per term --------------


def naive_unique_terms(codes: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Every term by ``np.unique`` over the uint8 bin codes of its columns (plug-in, bits)."""
    c8 = codes.astype(np.uint8)
    kq = int(q.max()) + 1
    out = []
    for cols in _subsets(codes.shape[1]):
        _, inv = np.unique(c8[:, cols], axis=0, return_inverse=True)
        inv = inv.reshape(-1)
        out.append(plugin_mi(inv, int(inv.max()) + 1, q, kq, None))
    return np.array(out)


def infomeasure_terms(codes: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Every term by ``infomeasure.mutual_information(..., approach="discrete")``."""
    import infomeasure as im

    q2 = q[:, None]
    return np.array(
        [
            im.mutual_information(codes[:, cols], q2, approach="discrete", base=2)
            for cols in _subsets(codes.shape[1])
        ]
    )


def frites_terms(g: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Every term by frites' ``mi_model_1d_gd`` on copula-normalised columns (bias-corrected)."""
    from frites.core import mi_model_1d_gd

    return np.array(
        [
            mi_model_1d_gd(np.ascontiguousarray(g[:, cols].T), q, biascorrect=True, demeaned=True)
            for cols in _subsets(g.shape[1])
        ]
    )


def _installed(module: str) -> bool:
    try:
        __import__(module)
    except ImportError:
        return False
    return True


#: Targets at N = 50, one torch thread as the peers run: our time x target <= the peer's.
TARGETS = {
    ("unique", 50): 30.0,
    ("infomeasure", 50): 35.0,
    ("frites", 50): 20.0,
}


def peer_table(features: list[int], repeats: int) -> None:
    """Our one-pass ``feature_terms`` against per-term loops of the peers, in this process."""
    have_im, have_fr = _installed("infomeasure"), _installed("frites")
    missing = [m for m, ok in (("infomeasure", have_im), ("frites", have_fr)) if not ok]
    print(
        f"\nthe 2N+1 terms I(S; Q) for Q with {N_CLASSES} symbols (uniform weights), against the "
        "peers, one call per term; median ms"
        + (f" ({', '.join(missing)} not installed: pip install -e '.[bench]')" if missing else "")
    )
    print(
        "| N | binning feature_terms | np.unique per term (uint8) | infomeasure per term "
        "| copula ranks (floor) | GCMI feature_terms | frites mi_model_1d_gd per term "
        "| max diff binning / GCMI (bits) |"
    )
    print("|---|---|---|---|---|---|---|---|")
    binning, gc = BinningEstimator(bins=BINS), gibloss.GaussianCopulaEstimator()
    for n_feat in features:
        x, _, y = make_data(n_feat)
        q = y.astype(np.int64)  # Q's codes: 10 symbols
        codes = binning.discretize(x)
        t_bin, ours_b = best_of(partial(binning.feature_terms, x, q[:, None]), repeats)
        t_gc, ours_g = best_of(partial(gc.feature_terms, x, q[:, None]), repeats)
        t_rank, g = best_of(partial(copula_normalize, x), repeats)
        flat_b = np.concatenate([[ours_b.whole], ours_b.single, ours_b.complement])
        flat_g = np.concatenate([[ours_g.whole], ours_g.single, ours_g.complement])
        peer_reps = 1 if n_feat > 50 else max(1, repeats // 2)
        naive_unique_terms(codes[:, :2], q)  # the peers warm up on two columns
        t_uni, ref_u = best_of(partial(naive_unique_terms, codes, q), peer_reps, warmup=False)
        cells = {"unique": f"{t_uni / t_bin:.1f}x slower"}
        diff_b = float(np.abs(flat_b - ref_u).max())
        if have_im:
            infomeasure_terms(codes[:, :2], q)
            t_im, ref_im = best_of(partial(infomeasure_terms, codes, q), 1, warmup=False)
            cells["infomeasure"] = f"{t_im / t_bin:.1f}x slower"
            diff_b = max(diff_b, float(np.abs(flat_b - ref_im).max()))
        diff_g = float("nan")
        if have_fr:
            frites_terms(g[:, :2], q)
            t_fr, ref_fr = best_of(partial(frites_terms, g, q), peer_reps, warmup=False)
            cells["frites"] = f"{t_fr / t_gc:.1f}x slower"
            # gibloss clips every Gaussian term to its exact bounds [0, H(Q)]; so does the check
            h_q = float(plugin_entropy(q))
            diff_g = float(np.abs(flat_g - np.clip(ref_fr, 0.0, h_q)).max())
        for (peer, n_target), target in TARGETS.items():
            if n_target == n_feat and peer in cells:
                ratio = float(cells[peer].split("x")[0])
                cells[peer] += f" (target {target:g}x: {'met' if ratio >= target else 'missed'})"
        print(
            f"| {n_feat} | {t_bin * 1e3:.1f} ms | {cells['unique']} | "
            f"{cells.get('infomeasure', '—')} | {t_rank * 1e3:.1f} ms | {t_gc * 1e3:.1f} ms | "
            f"{cells.get('frites', '—')} | {diff_b:.1e} / {diff_g:.1e} |"
        )


# --- timing -------------------------------------------------------------------------------------


def best_of(fn: Callable[[], object], repeats: int, warmup: bool = True) -> tuple[float, object]:
    """Median wall time of ``repeats`` calls (after one untimed call) and the last result."""
    if warmup:
        fn()
    times, result = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t0)
    return float(np.median(times)), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--features", type=int, nargs="+", default=[10, 50, 128])
    parser.add_argument("--boot", type=int, default=100, help="bootstrap resamples to time")
    parser.add_argument("--no-peers", action="store_true", help="skip the table of the peers")
    parser.add_argument(
        "--threads", type=int, default=1,
        help="torch intra-op threads (default 1: the peers run on one thread)",
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch threads {torch.get_num_threads()}")
    if not args.no_peers:
        peer_table(args.features, args.repeats)
        print()

    print(f"n = {N_SAMPLES}, {N_CLASSES} classes, {BINS} bins; median of {args.repeats} runs")
    print(
        f"{'estimator':10s} {'N':>4s} {'gib() ms':>10s} {'per-term ms':>12s} {'ratio':>8s} "
        f"{'max |diff| bits':>16s} {'unique rows':>12s}"
    )
    for n_feat in args.features:
        x, logits, y = make_data(n_feat)
        for name, naive, opts in (
            ("binning", naive_binning, {"bins": BINS}),
            ("gaussian_copula", naive_gcmi, {}),
        ):
            gib_call = partial(gibloss.gib, x, logits, y, estimator=name, **opts)
            t_fast, res = best_of(gib_call, args.repeats)
            reps = max(1, args.repeats // 2) if n_feat > 50 else args.repeats
            t_slow, ref = best_of(partial(naive, x, logits, y), reps, warmup=False)
            ours = np.concatenate([[res.whole], res.single, res.complement])
            diff = float(np.abs(ours - ref).max())
            urf = res.diagnostics.get("unique_row_fraction")
            urf_s = "—" if urf is None else f"{urf:.3f}"
            print(
                f"{name:10s} {n_feat:4d} {t_fast * 1e3:10.2f} {t_slow * 1e3:12.1f} "
                f"{t_slow / t_fast:7.1f}x {diff:16.2e} {urf_s:>12s}"
            )
    print("\npeak tensor memory of gib() (storages held at once, evaluation/_counting.py)")
    for n_feat in sorted({max(args.features), 128}):
        x, logits, y = make_data(n_feat)
        for name, opts in (("binning", {"bins": BINS}), ("gaussian_copula", {})):
            call = partial(gibloss.gib, x, logits, y, estimator=name, **opts)
            peak = peak_tensor_bytes(call)
            print(f"{name:16s} N = {n_feat:4d}, n = {N_SAMPLES}: {peak / 2**20:7.1f} MiB "
                  f"(the input x itself: {x.nbytes / 2**20:.1f} MiB)")
    if args.boot:
        print(f"\nbootstrap intervals, {args.boot} resamples (gib(..., n_boot={args.boot}))")
        print(
            f"{'estimator':10s} {'N':>4s} {'gib() ms':>10s} {'with n_boot ms':>15s} {'ratio':>8s}"
        )
        for n_feat in args.features:
            x, logits, y = make_data(n_feat)
            for name, opts in (("binning", {"bins": BINS}), ("gaussian_copula", {})):
                t_one, _ = best_of(partial(gibloss.gib, x, logits, y, estimator=name, **opts), 3)
                boot = partial(gibloss.gib, x, logits, y, estimator=name, n_boot=args.boot, **opts)
                t_boot, _ = best_of(boot, max(1, args.repeats // 2), warmup=False)
                print(
                    f"{name:10s} {n_feat:4d} {t_one * 1e3:10.2f} {t_boot * 1e3:15.1f} "
                    f"{t_boot / t_one:7.1f}x"
                )


if __name__ == "__main__":
    main()
