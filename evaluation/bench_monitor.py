"""Cost of one InformationPlaneMonitor call as a fraction of a training epoch, in one process.

Two configurations, each timed in the same run:

* **digits MLP** — scikit-learn's digits (1797 images, 8×8), the appendix E.6 tanh network adapted
  to 64 inputs (64-1024-20-20-20-10), Adam, batch 32; the probe is the whole training set (the
  paper's "first 5000 training samples", capped by the data), GIB features = PCA-10 fitted once,
  every Linear layer and the output monitored.
* **ResNet-20 quick** — 5000 CIFAR-size 3×32×32 images (random stand-ins: timing only), SGD, batch
  128; the probe is the first 500 training images (the paper's 10 % proportion: 5000 of 50 000),
  GIB features = KPCA-50 (RBF, gamma = 1/3072) fitted once on the probe, IB on the logits as in
  the paper (and, separately, with the default every-Conv/Linear layer set).

Prints the time of an epoch, of one monitor call (median) and their ratio; the one-off feature fit
is reported separately, and each call is also timed without the argmax-coded reading that the
monitor records beside the probability coding by default. Target: a call costs at most 5 % of
an epoch.

Usage::

    python evaluation/bench_monitor.py [--repeats 3] [--skip-resnet]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.datasets import load_digits

from gibloss import InformationPlaneMonitor, KernelPCAReducer, PCAReducer
from gibloss._recipes.models import cifar_resnet, mlp


def _epoch(model, opt, x, y, batch):
    model.train()
    perm = torch.randperm(len(x))
    t0 = time.perf_counter()
    for s in range(0, len(x), batch):
        idx = perm[s : s + batch]
        loss = F.cross_entropy(model(x[idx]), y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    return time.perf_counter() - t0


def _timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def _calls(mon, repeats):
    times = []
    for k in range(repeats):
        t0 = time.perf_counter()
        mon.measure(epoch=k)
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def digits(repeats: int) -> None:
    d = load_digits()
    x = torch.tensor(d.data / 16.0, dtype=torch.float32)
    y = torch.tensor(d.target)
    torch.manual_seed(0)
    model = mlp((64, 1024, 20, 20, 20, 10), "tanh")
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    t_epoch = float(np.median([_epoch(model, opt, x, y, 32) for _ in range(repeats)]))
    t0 = time.perf_counter()
    red = PCAReducer(10).fit(x)
    t_fit = time.perf_counter() - t0
    mon = InformationPlaneMonitor(model, (x, y), features=red, estimators=("binning",))
    t_call = _calls(mon, repeats)
    mon.close()
    mon = InformationPlaneMonitor(
        model, (x, y), features=red, estimators=("binning",), argmax_reading=False
    )
    t_probs_only = _calls(mon, repeats)
    mon.close()
    model.eval()
    with torch.no_grad():
        t_fwd = float(np.median([_timed(lambda: model(x)) for _ in range(repeats)]))
    print(
        f"digits MLP   epoch {t_epoch * 1e3:8.1f} ms | monitor call {t_call * 1e3:7.1f} ms "
        f"= {100 * t_call / t_epoch:5.1f} % of an epoch | PCA fit once {t_fit * 1e3:.1f} ms"
    )
    print(
        f"             of which the probe's forward pass alone {t_fwd * 1e3:.1f} ms "
        f"({100 * t_fwd / t_epoch:.1f} %); measuring every 10 epochs costs "
        f"{t_call / (10 * t_epoch):.1%} of training"
    )
    print(
        f"             without the argmax reading (argmax_reading=False) "
        f"{t_probs_only * 1e3:.1f} ms: both codings cost {t_call / t_probs_only:.2f}x one"
    )


def resnet(repeats: int) -> None:
    torch.manual_seed(0)
    x = torch.rand(5000, 3, 32, 32)
    y = torch.randint(0, 10, (5000,))
    model = cifar_resnet(20)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4)
    t_epoch = _epoch(model, opt, x, y, 128)
    probe = (x[:500], y[:500])
    t0 = time.perf_counter()
    red = KernelPCAReducer(50).fit(probe[0])
    t_fit = time.perf_counter() - t0
    for label, layers in (("logits", []), ("all layers", None)):
        mon = InformationPlaneMonitor(
            model, probe, features=red, layers=layers, estimators=("binning",), batch_size=250
        )
        t_call = _calls(mon, repeats)
        mon.close()
        mon = InformationPlaneMonitor(
            model, probe, features=red, layers=layers, estimators=("binning",), batch_size=250,
            argmax_reading=False,
        )
        t_one = _calls(mon, repeats)
        mon.close()
        print(
            f"ResNet-20 q. epoch {t_epoch:8.2f} s  | monitor call ({label}) {t_call * 1e3:7.1f} ms "
            f"= {100 * t_call / t_epoch:5.1f} % of an epoch | KPCA fit once {t_fit:.2f} s"
        )
        print(
            f"             without the argmax reading {t_one * 1e3:7.1f} ms: "
            f"both codings cost {t_call / t_one:.2f}x one"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--skip-resnet", action="store_true")
    args = parser.parse_args()
    print(f"torch threads {torch.get_num_threads()}")
    digits(args.repeats)
    if not args.skip_resnet:
        resnet(args.repeats)


if __name__ == "__main__":
    main()
