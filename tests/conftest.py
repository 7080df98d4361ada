"""Shared fixtures: a seeded RNG and a single-thread torch for deterministic, fair CPU tests."""
import numpy as np
import pytest
import torch

torch.set_num_threads(1)


@pytest.fixture
def rng():
    """A local, seeded numpy Generator (no global state)."""
    return np.random.default_rng(0)


@pytest.fixture
def gen():
    """A local, seeded torch Generator."""
    return torch.Generator().manual_seed(0)
