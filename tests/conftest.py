"""Shared fixtures and settings for the test suite."""

from __future__ import annotations

import os

import matplotlib
import numpy as np
import pytest
from hypothesis import settings

matplotlib.use("Agg")

# 300 hypothesis cases per property in CI; GIBLOSS_HYPOTHESIS_EXAMPLES raises it (e.g. 10000).
settings.register_profile(
    "gibloss", max_examples=int(os.environ.get("GIBLOSS_HYPOTHESIS_EXAMPLES", "300")), deadline=None
)
settings.load_profile("gibloss")


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(12345)
