"""🤗 Transformers TrainerCallback and Accelerate helpers."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import gibloss
from gibloss import GIBLoss, InformationPlaneMonitor

transformers = pytest.importorskip("transformers")
accelerate = pytest.importorskip("accelerate")


class _Tokens(torch.utils.data.Dataset):
    def __init__(self, ids: torch.Tensor, labels: torch.Tensor) -> None:
        self.ids, self.labels = ids, labels

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {"input_ids": self.ids[i], "labels": self.labels[i]}


def test_trainer_callback_logs_and_writes_jsonl(tmp_path: Path) -> None:
    from transformers import BertConfig, BertForSequenceClassification, Trainer, TrainingArguments

    from gibloss.integrations.transformers import GIBTrainerCallback

    torch.manual_seed(0)
    cfg = BertConfig(
        vocab_size=50,
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
        max_position_embeddings=16,
        num_labels=2,
    )
    model = BertForSequenceClassification(cfg)
    ids = torch.randint(1, 50, (64, 8))
    labels = (ids[:, 0] > 25).long()
    args = TrainingArguments(
        output_dir=str(tmp_path / "out"),
        per_device_train_batch_size=16,
        num_train_epochs=1,
        logging_steps=1,
        report_to=[],
        save_strategy="no",
        use_cpu=True,
        disable_tqdm=True,
    )
    trainer = Trainer(model=model, args=args, train_dataset=_Tokens(ids, labels))
    path = tmp_path / "metrics.jsonl"
    monitor = InformationPlaneMonitor(
        model,
        (ids[:32], labels[:32]),
        layers=["classifier"],
        features=ids[:32, :4].float(),
        path=path,
        bins=8,
    )
    GIBTrainerCallback.attach(trainer, monitor, every_steps=2, at_evaluate=False)
    trainer.train()
    recs = gibloss.read_records(path)
    steps = [r["step"] for r in recs if r["kind"] == "measurement"]
    assert steps == [2, 4]
    assert monitor.closed  # closed at train end, run-range IB appended
    assert any(r["kind"] == "ib_run_range" for r in recs)
    logged = [h for h in trainer.state.log_history if "gib/binning/complexity" in h]
    assert [h["step"] for h in logged] == [2, 4]
    assert model.training  # the Trainer's model mode is untouched


def test_accelerate_helpers_log_through_tracker(tmp_path: Path) -> None:
    from accelerate import Accelerator
    from accelerate.tracking import GeneralTracker

    from gibloss.integrations.accelerate import log_gib_loss, make_monitor

    class Recorder(GeneralTracker):
        name = "recorder"
        requires_logging_directory = False

        def __init__(self) -> None:
            super().__init__()
            self.logged: list[tuple[dict, int | None]] = []

        @property
        def tracker(self):  # noqa: D401 - accelerate API
            return self

        def store_init_configuration(self, values: dict) -> None:
            pass

        def log(self, values: dict, step: int | None = None, **kwargs) -> None:
            self.logged.append((values, step))

    rec = Recorder()
    acc = Accelerator(cpu=True, log_with=[rec])
    acc.init_trackers("t")
    torch.manual_seed(0)
    model = acc.prepare(
        torch.nn.Sequential(torch.nn.Linear(4, 6), torch.nn.Tanh(), torch.nn.Linear(6, 3))
    )
    x, y = torch.randn(80, 4), torch.randint(0, 3, (80,))
    mon = make_monitor(acc, model, (x, y), path=tmp_path / "m.jsonl", bins=8)
    mon.measure(step=3)
    mon.close()
    loss = GIBLoss()
    loss(x, model(x), y)
    scalars = log_gib_loss(acc, loss, step=4)
    assert scalars["gibloss/complexity"] == pytest.approx(float(loss.last_terms.complexity))
    steps = [s for _, s in rec.logged]
    assert steps == [3, 4]
    assert "gib/binning/complexity" in rec.logged[0][0]
    with pytest.raises(RuntimeError, match="not been called"):
        log_gib_loss(acc, GIBLoss())
