"""InformationPlaneMonitor: records, hooks, model state, crash safety, both binning conventions."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import gibloss
from gibloss import InformationPlaneMonitor
from gibloss._recipes.models import mlp


def _setup(seed: int = 0):
    torch.manual_seed(seed)
    model = mlp((6, 8, 4, 3), "tanh")
    x = torch.randn(300, 6)
    y = (x[:, 0] > 0).long() + (x[:, 1] > 0.5).long()
    return model, x, y


def _train_steps(model, x, y, steps=5):
    opt = torch.optim.SGD(model.parameters(), lr=0.5)
    for _ in range(steps):
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()


def test_records_well_formed_hooks_removed_mode_restored(tmp_path: Path) -> None:
    model, x, y = _setup()
    model.train()
    model[1].eval()  # a mixed-mode model must come back exactly as it was
    path = tmp_path / "run.jsonl"
    modes_before = [m.training for m in model.modules()]
    with InformationPlaneMonitor(
        model, (x, y), estimators=("binning", "gaussian_copula"), path=path, run="r0", bins=10
    ) as mon:
        for epoch in range(3):
            _train_steps(model, x, y)
            rec = mon.measure(epoch=epoch)
            assert [m.training for m in model.modules()] == modes_before
        assert rec["kind"] == "measurement" and rec["epoch"] == 2
        # the last Linear ("4") is the output: measured and drawn once, as "output"
        assert set(rec["ib"]["binning"]) == {"0", "2", "output"}
        assert len(rec["gib"]["gaussian_copula"]["single"]) == 6
        diag = rec["gib"]["binning"]["diagnostics"]
        assert {"h_q", "n_z_codes", "n_q_cells", "unique_row_fraction"} <= set(diag)
        assert 0 <= rec["accuracy"] <= 1 and rec["loss"] > 0
        assert rec["ib"]["binning"]["output"]["convention"] == "per_call"
    # hooks gone
    assert all(len(m._forward_hooks) == 0 for m in model.modules())
    lines = path.read_text().splitlines()
    kinds = [json.loads(line)["kind"] for line in lines]
    assert kinds[0] == "header" and kinds.count("measurement") == 3
    assert kinds.count("ib_run_range") == 3  # appended on close
    rr = [json.loads(line) for line in lines if json.loads(line)["kind"] == "ib_run_range"]
    assert rr[0]["ib"]["binning"]["output"]["convention"] == "run_range"
    # one range per layer over the run
    assert all(r["ranges"] == rr[0]["ranges"] for r in rr)
    # training forwards after close capture nothing and are unaffected
    model(x)


def test_measure_matches_direct_computation() -> None:
    model, x, y = _setup()
    mon = InformationPlaneMonitor(model, (x, y), bins=10, conventions=("per_call",))
    rec = mon.measure(step=7)
    mon.close()
    with torch.no_grad():
        out = model(x)
    direct = gibloss.gib(x.numpy(), out.numpy(), y.numpy(), estimator="binning", bins=10)
    assert rec["gib"]["binning"]["complexity"] == pytest.approx(direct.complexity)
    acc = float((out.argmax(1) == y).float().mean())
    assert rec["accuracy"] == pytest.approx(acc)
    assert rec["loss"] == pytest.approx(float(F.cross_entropy(out, y)), rel=1e-6)


def test_run_range_convention_uses_one_range(tmp_path: Path) -> None:
    model, x, y = _setup(1)
    path = tmp_path / "r.jsonl"
    mon = InformationPlaneMonitor(model, (x, y), path=path, bins=8)
    acts = []
    for _ in range(3):
        _train_steps(model, x, y, steps=10)
        mon.measure()
        with torch.no_grad():
            acts.append(model(x).numpy().astype(np.float16).astype(np.float64))
    mon.close()
    rr = [r for r in gibloss.read_records(path) if r["kind"] == "ib_run_range"]
    lo = min(a.min() for a in acts)
    hi = max(a.max() for a in acts)
    assert rr[0]["ranges"]["output"] == pytest.approx([lo, hi])
    est = gibloss.BinningEstimator(bins=8, strategy="fixed", range=(lo, hi))
    expected = gibloss.entropy(acts[1], est)  # distinct inputs: I(X;T) = H(T)
    assert rr[1]["ib"]["binning"]["output"]["complexity"] == pytest.approx(expected)
    # offline recomputation gives the same numbers
    again = gibloss.recompute_run_range(path, y.numpy(), x.numpy(), bins=8, write=False)
    assert again[1]["ib"] == rr[1]["ib"]


def test_crash_mid_run_leaves_earlier_records_readable(tmp_path: Path) -> None:
    model, x, y = _setup()
    path = tmp_path / "crash.jsonl"
    mon = InformationPlaneMonitor(model, (x, y), path=path, bins=10)
    mon.measure(epoch=0)
    mon.measure(epoch=1)
    # simulate a crash while writing the next record: a torn last line
    with path.open("a") as fh:
        fh.write('{"kind": "measurement", "run": "run", "epo')
    with pytest.warns(RuntimeWarning, match="torn last line"):
        recs = gibloss.read_records(path)
    assert [r["kind"] for r in recs] == ["header", "measurement", "measurement"]
    # the kept activations still allow the run-range recomputation
    with pytest.warns(RuntimeWarning, match="torn last line"):
        rr = gibloss.recompute_run_range(path, y.numpy(), x.numpy(), bins=10, write=False)
    assert len(rr) == 2


def test_malformed_record_file_is_reported(tmp_path: Path) -> None:
    p = tmp_path / "bad.jsonl"
    p.write_text('{"kind": "header"}\nnot json\n{"kind": "measurement"}\n')
    with pytest.raises(ValueError, match=r"bad.jsonl:2"):
        gibloss.read_records(p)
    with pytest.raises(FileNotFoundError):
        gibloss.read_records(tmp_path / "missing.jsonl")


def test_step_every_k_and_features_reducer() -> None:
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 8 * 8, 10))
    x = torch.randn(120, 3, 8, 8)
    y = torch.randint(0, 10, (120,))
    mon = InformationPlaneMonitor(
        model, (x, y), every=5, conventions=("per_call",), features=gibloss.PCAReducer(6)
    )
    got = [mon.step(s) for s in range(11)]
    mon.close()
    assert [g is not None for g in got] == [s % 5 == 0 for s in range(11)]
    assert len(got[5]["gib"]["binning"]["single"]) == 6


def test_conv_layers_are_summarised_per_channel() -> None:
    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Conv2d(1, 4, 3), torch.nn.ReLU(), torch.nn.Flatten(), torch.nn.Linear(4 * 6 * 6, 2)
    )
    x = torch.randn(50, 1, 8, 8)
    y = torch.randint(0, 2, (50,))
    with InformationPlaneMonitor(
        model, (x, y), conventions=("per_call",), estimators=("gaussian_copula",)
    ) as mon:
        rec = mon.measure()
    assert set(rec["ib"]["gaussian_copula"]) == {"0", "output"}  # "3" is the output


@pytest.mark.parametrize(
    "kwargs, exc, match",
    [
        ({"layers": ["nope"]}, ValueError, "not modules"),
        ({"conventions": ("fixed",)}, ValueError, "conventions"),
        ({"every": 0}, ValueError, "every"),
        ({"estimators": ()}, ValueError, "at least one"),
        ({"features": np.zeros((3, 2))}, ValueError, "rows"),
    ],
)
def test_monitor_bad_arguments(kwargs, exc, match) -> None:
    model, x, y = _setup()
    with pytest.raises(exc, match=match):
        InformationPlaneMonitor(model, (x, y), **kwargs)


def test_monitor_bad_probe() -> None:
    model, x, y = _setup()
    with pytest.raises(ValueError, match="same number of samples"):
        InformationPlaneMonitor(model, (x, y[:10]))
    with pytest.raises(TypeError, match="probe"):
        InformationPlaneMonitor(model, x)


def test_a_second_run_to_the_same_file_gets_a_new_run_id_or_replaces_the_old(tmp_path) -> None:
    torch.manual_seed(0)
    x, y = torch.randn(60, 3), torch.randint(0, 2, (60,))
    model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Tanh(), torch.nn.Linear(4, 2))
    path = tmp_path / "m.jsonl"

    def run_once(**kwargs) -> str:  # type: ignore[no-untyped-def]
        with gibloss.InformationPlaneMonitor(model, (x, y), path=path, bins=5, **kwargs) as mon:
            for epoch in range(2):
                mon.measure(epoch=epoch)
        return mon.run

    assert run_once() == "run"
    with pytest.warns(UserWarning, match="recorded as 'run-2'"):
        assert run_once() == "run-2"
    runs = [r["run"] for r in gibloss.read_records(path) if r["kind"] == "measurement"]
    assert runs == ["run", "run", "run-2", "run-2"]  # two runs of two points, never merged
    assert run_once(run="run-2", overwrite=True) == "run-2"
    runs = [r["run"] for r in gibloss.read_records(path) if r["kind"] == "measurement"]
    assert runs == ["run", "run", "run-2", "run-2"]  # the old run-2 replaced, run kept
    headers = [r for r in gibloss.read_records(path) if r["kind"] == "header"]
    assert [h["run"] for h in headers] == ["run", "run-2"]
    # a file that holds only the run being overwritten (it crashed: nothing was kept to copy)
    alone = tmp_path / "alone.jsonl"
    for _ in range(2):
        with gibloss.InformationPlaneMonitor(model, (x, y), path=alone, overwrite=True) as mon:
            mon.measure(epoch=0)
    kinds = [r["kind"] for r in gibloss.read_records(alone)]
    assert kinds.count("header") == 1 and kinds.count("measurement") == 1


def test_the_three_parts_compose_to_the_monitor(tmp_path: Path) -> None:
    """Recorder -> record function -> store, used by hand, give the monitor's record."""
    from gibloss.monitor import ActivationRecorder, Probe, RunStore, measurement_record

    model, x, y = _setup()
    _train_steps(model, x, y)
    model.train()
    with ActivationRecorder(model, ["0", "2"]) as recorder:
        acts, out = recorder(x)
        assert model.training  # the recorder restores the training flags
        assert sorted(acts) == ["0", "2", "output"] and acts["0"].shape == (300, 8)
    assert all(len(m._forward_hooks) == 0 for m in model.modules())
    probe = Probe.from_data((x, y))
    est = [gibloss.get_estimator("binning", bins=10)]
    by_hand = measurement_record(acts, out, probe, estimators=est)
    # the pure function reads the same numbers as the measures it composes
    direct = gibloss.gib(x.numpy(), out.numpy(), y.numpy(), estimator="binning", bins=10)
    assert by_hand["gib"]["binning"]["complexity"] == pytest.approx(direct.complexity)
    assert by_hand["gib"]["binning"]["null"]["complexity"] >= 0
    store = RunStore(tmp_path / "s.jsonl", "by-hand").open()
    store.write_header({"note": "parts"})
    store.append({"kind": "measurement", "run": store.run, "index": 0} | by_hand)
    with InformationPlaneMonitor(
        model, (x, y), layers=["0", "2"], bins=10, conventions=("per_call",)
    ) as mon:
        rec = mon.measure()
    for key in ("loss", "accuracy", "ib", "gib"):
        assert rec[key] == by_hand[key], key
    stored = gibloss.read_records(tmp_path / "s.jsonl")
    assert [r["kind"] for r in stored] == ["header", "measurement"]
    assert stored[1]["gib"] == json.loads(json.dumps(by_hand["gib"]))


def test_run_store_resume_continues_indices_and_drops_orphan_activations(tmp_path: Path) -> None:
    from gibloss.monitor import RunStore

    path = tmp_path / "r.jsonl"
    store = RunStore(path, "a")
    with pytest.raises(RuntimeError, match="open"):
        store.write_header({})  # the file is settled by open(), not by the constructor
    store.open().write_header({})
    for i in range(2):
        store.keep({"output": np.zeros((4, 2))}, step=i, epoch=None)
        store.append({"kind": "measurement", "run": "a", "index": i})
        store.next_index += 1
    store.keep({"output": np.ones((4, 2))}, step=2, epoch=None)  # crashed before its record
    again = RunStore(path, "a", resume=True)
    orphan = again.activations_dir / "m000002.npz"
    assert orphan.exists()  # the constructor deletes nothing
    assert again.open() is again and not orphan.exists()
    assert again.run == "a" and again.next_index == 2
    again.write_header({})  # a resumed run has its header already
    acts, meta = again.kept()
    assert [m["index"] for m in meta] == [0, 1] and len(acts) == 2
    assert [r["kind"] for r in gibloss.read_records(path)] == ["header"] + ["measurement"] * 2
