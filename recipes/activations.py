"""Fig. 2: IB compresses only for tanh; GIB compresses for five activation functions.

Method (paper §1 and Fig. 2, after Shwartz-Ziv & Tishby 2017 and Saxe et al. 2018). The 12-bit
task: all 4096 patterns of 12 binary inputs with binary labels (the original ``var_u.mat`` with
``--data-file``; otherwise a cyclic-symmetric stand-in labelling, see
``gibloss._recipes.data.tishby_12bit``).
The 12-10-7-5-4-3-2 network is trained with tanh, ReLU, softplus, swish and leaky ReLU hidden units.
Every ``measure_every`` epochs, on the training set, the monitor records IB of the last hidden layer
(binning, 30 bins; per-call edges and one run-wide range, the convention Saxe et al.'s "IB
compresses only for tanh" rests on) and the GIB terms with the 12 input bits as features. The
paper does not list the optimiser for this figure; we use Adam (lr 1e-3, batch 256).

Run: ``accelerate launch recipes/activations.py [--quick]``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from accelerate.utils import set_seed

import gibloss
from gibloss._recipes import reports
from gibloss._recipes.data import tishby_12bit
from gibloss._recipes.experiment import Recipe, recipe_parser
from gibloss._recipes.models import mlp

PAPER = {
    "activations": ["tanh", "relu", "softplus", "swish", "leaky_relu"],
    "sizes": [12, 10, 7, 5, 4, 3, 2],
    "epochs": 3000,
    "batch_size": 256,
    "lr": 1e-3,
    "bins": 30,
    "measure_every": 50,
    "seeds": [0, 1, 2, 3, 4],
}
QUICK = {"epochs": 120, "measure_every": 10, "seeds": [0, 1]}
#: What the paper reports; the summary sets what this run shows beside it.
CLAIM = ("Standard IB (last hidden layer, binning) shows a compression phase only for tanh; "
         "GIB shows compression for tanh, ReLU, softplus, swish and leaky ReLU (Fig. 2).")


def main() -> None:
    parser = recipe_parser(__doc__.splitlines()[0], "epochs", "lr", "measure_every")
    parser.add_argument("--activations", nargs="+", default=None)
    parser.add_argument("--data-file", default=None, help="Saxe et al.'s var_u.mat, if available")
    args = parser.parse_args()
    recipe = Recipe("activations", args, PAPER, QUICK)
    recipe.start()  # output folder, config.json (a fresh run clears old records)
    cfg, accelerator = recipe.config, recipe.accelerator
    data = tishby_12bit(args.data_file)
    recipe.log(f"[activations] data: {data.description}")
    x, y = data.x_train.to(accelerator.device), data.y_train.to(accelerator.device)
    # mlp() alternates Linear and activation modules: with L = len(sizes) - 1 Linear layers the
    # last hidden activation is module 2 (L - 1) - 1 (module 9 of the 12-10-7-5-4-3-2 net)
    last_hidden = 2 * (len(cfg["sizes"]) - 2) - 1
    for act in cfg["activations"]:
        for seed in cfg["seeds"]:
            run, tag = f"{act}/seed{seed}", f"{act}_seed{seed}"
            set_seed(seed)
            model = mlp(cfg["sizes"], act)
            optimizer = torch.optim.Adam(model.parameters(), lr=cfg["lr"])
            accelerator.free_memory()  # the checkpoint holds this run's model and optimiser
            model, optimizer = accelerator.prepare(model, optimizer)
            start = recipe.resume_run(tag, run, cfg["epochs"])  # 0 unless --resume
            monitor = recipe.monitor(model, (data.x_train, data.y_train), run, resume=start > 0,
                                     layers=[str(last_hidden)], bins=cfg["bins"])
            for epoch in recipe.progress(range(start, cfg["epochs"]), desc=run):
                model.train()
                for idx in recipe.batches(len(x), cfg["batch_size"], seed, epoch):
                    loss = F.cross_entropy(model(x[idx]), y[idx])
                    optimizer.zero_grad()
                    accelerator.backward(loss)
                    optimizer.step()
                recipe.end_epoch(monitor, tag, epoch, cfg["epochs"], cfg["measure_every"])
    if not recipe.is_main:
        return
    records = gibloss.read_records(recipe.metrics_path)
    layer, rows = str(last_hidden), []
    for act in cfg["activations"]:
        ib_edges = reports.compression_counts(records, "ib", prefix=f"{act}/", layer=layer)
        ib_range = reports.compression_counts(records, "ib", prefix=f"{act}/", layer=layer,
                                      convention="run_range")
        rows.append([act, reports.gib_readings(records, prefix=f"{act}/")["cell"],
                     "{}/{}".format(*ib_edges), "{}/{}".format(*ib_range)])
        runs = [f"{act}/seed{s}" for s in cfg["seeds"]]
        recipe.save_planes(records, act, runs, ib={"layers": [layer], "convention": "run_range"})
    header = ["activation", "GIB compression (cause; argmax-coded; r with H(Q))",
              "IB compression (per-call edges)", "IB compression (run-wide range)"]
    body = reports.markdown_table(header, rows)
    last = [r for r in records
            if r.get("kind") == "measurement" and r["epoch"] == cfg["epochs"] - 1]
    acc = {r["run"]: r["accuracy"] for r in last}
    body += ["", "Final training accuracy per run: "
             + ", ".join(f"{k} {v:.3f}" for k, v in sorted(acc.items())) + ".",
             "", reports.compression_sentence() + " Its cause is \"saturation\" when "
             "the weighted entropy of Q fell with it while the argmax-coded complexity (Z coded "
             "by the decision alone) did not, \"compression\" otherwise. r(complexity, H(Q)) is "
             "the correlation over time of the GIB complexity with H(Q), per run. Planes: "
             "`gib_<act>.png` (dotted: argmax coding), `ib_<act>.png` (last hidden layer, "
             "run-wide range)."]
    recipe.write_summary(CLAIM, body, data.description if data.standin else None)


if __name__ == "__main__":
    main()
