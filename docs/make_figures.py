"""Regenerate the figures shown in the documentation (``python docs/make_figures.py [OUT_DIR]``).

The home page's information plane comes from a real monitored run: the digits MLP of the
monitoring guide trained for 15 epochs, GIB (binning) measured every epoch.
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch
import torch.nn.functional as F
from sklearn.datasets import load_digits

import gibloss
from gibloss._recipes.models import mlp


def main(out_dir: Path) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    digits = load_digits()
    x = torch.tensor(digits.data / 16.0, dtype=torch.float32)
    y = torch.tensor(digits.target)
    records = out_dir / "plane-run.jsonl"
    records.unlink(missing_ok=True)
    for seed in (0, 1):
        torch.manual_seed(seed)
        model = mlp((64, 32, 16, 10), "tanh")
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)
        with gibloss.InformationPlaneMonitor(model, (x, y), features=gibloss.PCAReducer(10),
                                             path=records, run=f"digits MLP, seed {seed}",
                                             conventions=("per_call",)) as mon:
            for epoch in range(15):
                for s in range(0, len(x), 64):
                    loss = F.cross_entropy(model(x[s : s + 64]), y[s : s + 64])
                    opt.zero_grad()
                    loss.backward()
                    opt.step()
                mon.measure(epoch=epoch)
    fig = gibloss.plot_information_plane(records, kind="gib")
    path = out_dir / "information-plane.png"
    fig.savefig(path, dpi=100)
    from gibloss.summary import summary_table

    print(summary_table(gibloss.read_records(records)).split("## IB")[0])  # the caption's numbers
    records.unlink()
    return path


if __name__ == "__main__":
    print(main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).parent / "img"))
