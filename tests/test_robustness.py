"""gibloss.robustness and the robustness report."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import run_script

from gibloss.robustness import at_confidence, evaluate_robustness, mean_ci, paired_ci

ROOT = Path(__file__).resolve().parents[1]


def _model_and_data():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(6, 16), torch.nn.Tanh(), torch.nn.Linear(16, 3))
    x = torch.rand(90, 6)
    y = torch.randint(0, 3, (90,))
    return model, x, y


def test_fgsm_eps_zero_equals_clean_and_mode_restored() -> None:
    model, x, y = _model_and_data()
    model.train()
    res = evaluate_robustness(model, x, y, eps=(0.0, 0.05), pgd_steps=3)
    assert res.fgsm[0.0] == res.clean
    assert res.pgd[0.0] == res.clean
    assert model.training
    assert res.pgd[0.05] <= res.clean


def test_linear_model_fgsm_perturbation_has_the_sign_of_the_gradient() -> None:
    import torchattacks

    torch.manual_seed(1)
    model = torch.nn.Linear(5, 2)
    x = torch.full((4, 5), 0.5)
    y = torch.tensor([0, 1, 0, 1])
    eps = 0.1
    adv = torchattacks.FGSM(model, eps=eps)(x, y)
    # cross-entropy gradient w.r.t. x of a linear model: (softmax - onehot) @ W
    with torch.no_grad():
        p = torch.softmax(model(x), 1)
        grad = (p - torch.nn.functional.one_hot(y, 2).float()) @ model.weight
    torch.testing.assert_close(adv - x, eps * grad.sign())


def test_stronger_attacks_do_not_increase_accuracy() -> None:
    model, x, y = _model_and_data()
    res = evaluate_robustness(model, x, y, eps=(0.0, 0.05, 0.2), pgd_steps=5)
    assert res.fgsm[0.2] <= res.clean
    assert res.pgd[0.2] <= res.fgsm[0.2] + 0.05  # PGD is at least about as strong


@pytest.mark.parametrize(
    "make, exc, match",
    [
        (lambda m, x, y: (m, x * 3, y), ValueError, r"\[0, 1\]"),
        (lambda m, x, y: (m, x - 0.5, y), ValueError, r"\[0, 1\]"),
        (lambda m, x, y: (torch.nn.Linear(6, 1), x, y), ValueError, r"labels must lie in \[0, 1\)"),
        (lambda m, x, y: (torch.nn.Flatten(0), x, y), ValueError, r"shape \(n, k\)"),
        (lambda m, x, y: (m, x, y.float()), TypeError, "integer class labels"),
        (lambda m, x, y: (m, x[:10], y), ValueError, "samples"),
    ],
)
def test_bad_input_is_rejected(make, exc, match) -> None:
    model, x, y = _model_and_data()
    m, xx, yy = make(model, x, y)
    with pytest.raises(exc, match=match):
        evaluate_robustness(m, xx, yy, eps=(0.01,))


def test_eps_as_a_scalar_and_out_of_range_budgets() -> None:
    model, x, y = _model_and_data()
    res = evaluate_robustness(model, x, y, 0.05, pgd_steps=2)  # as the README writes it
    assert sorted(res.fgsm) == [0.05] and sorted(res.pgd) == [0.05]
    with pytest.raises(ValueError, match=r"inputs are in \[0, 1\]"):
        evaluate_robustness(model, x, y, eps=(8,))  # 0-255 units
    with pytest.raises(ValueError, match="`eps`"):
        evaluate_robustness(model, x, y, eps=float("nan"))
    with pytest.raises(TypeError, match="`eps`"):
        evaluate_robustness(model, x, y, eps="0.1")
    with pytest.raises(ValueError, match="`pgd_restarts`"):
        evaluate_robustness(model, x, y, 0.1, pgd_restarts=0)
    with pytest.raises(ValueError, match="`attacks`"):
        evaluate_robustness(model, x, y, 0.1, attacks=("cw",))


def test_restarts_only_lower_pgd_accuracy_and_the_callers_rng_is_left_alone() -> None:
    model, x, y = _model_and_data()
    state = torch.get_rng_state()
    one = evaluate_robustness(model, x, y, 0.2, pgd_steps=2, attacks=("pgd",))
    assert torch.equal(state, torch.get_rng_state())
    three = evaluate_robustness(model, x, y, 0.2, pgd_steps=2, pgd_restarts=3, attacks=("pgd",))
    # a row is robust only if it survives every restart, and restart 0 is the single run
    assert three.pgd[0.2] <= one.pgd[0.2]
    assert three.settings["pgd_restarts"] == 3


class _Quantised(torch.nn.Module):
    """Rounds its inputs to 1/4 steps: piecewise constant, so every input gradient is zero."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.round(x * 4) / 4


def test_square_sees_through_gradient_masking() -> None:
    # a model whose input gradient is zero: FGSM cannot move the inputs and reads the clean
    # accuracy, PGD only has its random start; the gradient-free Square attack still finds
    # perturbations that flip decisions
    torch.manual_seed(3)
    x = torch.rand(60, 6)
    inner = torch.nn.Linear(6, 2)
    with torch.no_grad():
        y = inner(torch.round(x * 4) / 4).argmax(1)  # labels the model gets right
    model = torch.nn.Sequential(_Quantised(), inner)
    res = evaluate_robustness(
        model, x, y, 0.15, pgd_steps=5, attacks=("fgsm", "pgd", "square"), square_queries=200
    )
    assert res.clean == 1.0 and res.fgsm[0.15] == 1.0
    assert res.square[0.15] < res.pgd[0.15] - 0.1, res
    half = evaluate_robustness(
        model, x, y, 0.15, attacks=("square",), square_queries=20, square_n=30
    )
    assert half.settings["square_n"] == 30


def test_result_table_and_dict() -> None:
    model, x, y = _model_and_data()
    res = evaluate_robustness(model, x, y, (0.0, 0.05), pgd_steps=2)
    text = res.table()
    assert text.splitlines()[0] == "| eps | FGSM | PGD |"
    assert f"| 0 (clean) | {res.clean:.3f} | {res.clean:.3f} |" in text
    assert f"| 0.05 | {res.fgsm[0.05]:.3f} | {res.pgd[0.05]:.3f} |" in text
    assert repr(res).startswith(f"RobustnessResult(clean={res.clean:.3f}, n=90)")
    d = res.as_dict()
    import json

    assert json.loads(json.dumps(d))["pgd"]["0.05"] == pytest.approx(res.pgd[0.05])


def test_intervals() -> None:
    m, lo, hi = mean_ci([0.5, 0.6, 0.7])
    assert m == pytest.approx(0.6) and lo < 0.6 < hi
    assert mean_ci([0.5])[1] != mean_ci([0.5])[1]  # nan: one seed has no interval
    d = paired_ci([0.6, 0.7, 0.8], [0.5, 0.6, 0.7])
    assert d[0] == pytest.approx(0.1) and d[1] == pytest.approx(0.1)
    with pytest.raises(ValueError, match="equal lengths"):
        paired_ci([1.0], [1.0, 2.0])


def test_matching_interpolates_inside_the_reference_and_never_extrapolates() -> None:
    # reference outcomes on the line 2c + 1, given unsorted: any point inside reads the line
    ref = [(0.9, 2.8), (0.6, 2.2), (0.75, 2.5)]
    for c in (0.6, 0.65, 0.75, 0.8, 0.9):
        assert at_confidence(c, ref) == pytest.approx(2 * c + 1)
    # a kink: the two bracketing points only, not a fit through all of them
    kinked = [(0.6, 0.0), (0.7, 1.0), (0.8, 0.0)]
    assert at_confidence(0.65, kinked) == pytest.approx(0.5)
    assert at_confidence(0.75, kinked) == pytest.approx(0.5)
    for c in (0.59, 0.91, float("nan")):
        assert at_confidence(c, ref) != at_confidence(c, ref)  # nan: no extrapolation
    assert at_confidence(0.5, []) != at_confidence(0.5, [])


@pytest.mark.slow
def test_report_from_a_tiny_run(tmp_path: Path) -> None:
    out = tmp_path / "run"
    run_script("recipes/regularised_vs_plain.py", "--quick", "--epochs", 2, "--output-dir", out)
    run_script("evaluation/robustness.py", out, "--eps", 0, 0.1, "--pgd-steps", 3)
    report = (out / "report.md").read_text()
    for setting in ("plain", "gaussian_copula:1.0", "confidence:0.3", "fgsm_train:0.1"):
        assert f"| {setting} |" in report
    answer = report.split("## Answer")[1].split("##")[0]
    assert "**1. Does GIB regularisation change robustness?**" in answer
    assert "positive control fgsm_train:0.1" in answer
    assert "**2. Can it be told from a confidence regulariser?**" in answer
    assert "seeds): ΔPGD" in answer and "matched in" in answer
    assert "**3. Gradient masking?**" in answer
    assert "**4. Does GIB complexity track robustness" in answer
    assert "without fgsm_train:0.1" in report
    assert "½-width (PGD)" in report and "partial r with PGD acc" in report
    assert "Square 0.1" in report
    assert (out / "robust_accuracy.png").exists() and (out / "robustness.csv").exists()
    missing = subprocess.run(
        [sys.executable, str(ROOT / "evaluation" / "robustness.py"), str(tmp_path / "nope")],
        capture_output=True,
        text=True,
    )
    assert missing.returncode == 2 and "not found" in missing.stderr
