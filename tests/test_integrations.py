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
    assert scalars["gib_loss/batch_complexity"] == pytest.approx(float(loss.last_terms.complexity))
    steps = [s for _, s in rec.logged]
    assert steps == [3, 4]
    assert "gib/binning/complexity" in rec.logged[0][0]
    with pytest.raises(RuntimeError, match="not been called"):
        log_gib_loss(acc, GIBLoss())


class _TokensWithFeatures(_Tokens):
    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {**super().__getitem__(i), "gib_features": self.ids[i, :4].float()}


def _tiny_bert_trainer(tmp_path: Path, train, evals, **kwargs):  # type: ignore[no-untyped-def]
    from transformers import BertConfig, BertForSequenceClassification, TrainingArguments

    from gibloss.integrations.transformers import GIBTrainer

    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=40, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
        intermediate_size=32, max_position_embeddings=16, num_labels=2,
    )
    args = TrainingArguments(
        output_dir=str(tmp_path / "out"), per_device_train_batch_size=16,
        per_device_eval_batch_size=16, num_train_epochs=1, report_to=[], save_strategy="no",
        use_cpu=True, logging_steps=1, disable_tqdm=True,
    )
    return GIBTrainer(
        model=BertForSequenceClassification(config), args=args, train_dataset=train,
        eval_dataset=evals, gib_loss=GIBLoss(weight=0.5), **kwargs,
    )


def test_gib_trainer_evaluates_the_task_loss_and_checks_rows_at_construction(
    tmp_path: Path,
) -> None:
    ids = torch.randint(1, 40, (48, 6))
    labels = (ids[:, 0] > 20).long()
    train, plain_eval = _TokensWithFeatures(ids, labels), _Tokens(ids[:32], labels[:32])
    trainer = _tiny_bert_trainer(tmp_path, train, plain_eval)
    trainer.train()
    logged = [h for h in trainer.state.log_history if "gib_loss/batch_complexity" in h]
    assert logged and all(h["gib_loss/batch_complexity"] >= 0 for h in logged)
    # evaluation rows without features: eval_loss is the model's own loss, nothing else
    metrics = trainer.evaluate()
    model = trainer.model.eval()
    with torch.no_grad():
        own = torch.stack(
            [model(input_ids=ids[s : s + 16], labels=labels[s : s + 16]).loss for s in (0, 16)]
        ).mean()
    assert metrics["eval_loss"] == pytest.approx(float(own), rel=1e-5)
    with pytest.raises(ValueError, match="gib_in_eval=False"):
        _tiny_bert_trainer(tmp_path, train, plain_eval, gib_in_eval=True)
    with pytest.raises(ValueError, match="`train_dataset` rows have no 'gib_features'"):
        _tiny_bert_trainer(tmp_path, plain_eval, None)
    featured = _TokensWithFeatures(ids[:32], labels[:32])
    assert trainer.evaluate(featured)["eval_loss"] == pytest.approx(metrics["eval_loss"])
    trainer.gib_in_eval = True  # the same model and rows, with the GIB term added
    assert trainer.evaluate(featured)["eval_loss"] > metrics["eval_loss"] + 1e-4


def test_monitor_passes_the_attention_mask_and_hooks_transformer_blocks(tmp_path: Path) -> None:
    from transformers import BertConfig, BertForSequenceClassification

    from gibloss.monitor import default_layers

    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=40, hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
        intermediate_size=32, max_position_embeddings=16, num_labels=2, pad_token_id=0,
    )
    model = BertForSequenceClassification(config).eval()
    with torch.no_grad():
        model.classifier.weight *= 1000.0  # large logits: the mask's effect shows in the loss
    ids = torch.randint(1, 40, (64, 8))
    ids[::2, 5:] = 0  # half the rows are padded
    y = (ids[:, 0] > 20).long()
    assert default_layers(model) == ["bert.encoder.layer.0", "bert.encoder.layer.1"]
    with InformationPlaneMonitor(model, (ids, y), path=tmp_path / "m.jsonl", bins=5) as mon:
        record = mon.measure(step=0)
    blocks = {"bert.encoder.layer.0", "bert.encoder.layer.1"}
    assert set(record["ib"]["binning"]) == blocks | {"output"}
    with torch.no_grad():
        masked = model(ids, attention_mask=(ids != 0).long()).logits
        unmasked = model(ids).logits
    expected = float(torch.nn.functional.cross_entropy(masked, y))
    assert record["loss"] == pytest.approx(expected, rel=1e-6)
    # without the mask the loss differs (seeded: by 1.8e-3), far beyond the 1e-6 above
    assert abs(float(torch.nn.functional.cross_entropy(unmasked, y)) - expected) > 1e-3
