"""Shared fixtures: a seeded RNG and a single-thread torch for deterministic, fair CPU tests.

Tests marked ``cuda`` skip when no CUDA device is visible. Every other test sees no CUDA
(``torch.cuda.is_available()`` is False inside it), so ``device='auto'`` means CPU and the
bit-identity tests stay on CPU on a GPU machine too.
"""
import numpy as np
import pytest
import torch

torch.set_num_threads(1)
_HAS_CUDA = torch.cuda.is_available()


def pytest_collection_modifyitems(config, items):
    """Run the OpenVINO tests last; skip ``cuda``-marked tests cleanly without a CUDA device.

    Once an OpenVINO runtime has compiled models in a process, a later torch training run in
    that same process (tests/test_imagenet.py's) died with a segmentation fault (OpenVINO
    2026.4, torch 2.13 CPU); the deploy tests therefore come after everything else."""
    items.sort(key=lambda item: item.nodeid.startswith("tests/test_deploy.py"))  # stable sort
    if _HAS_CUDA:
        return
    skip = pytest.mark.skip(reason="needs a CUDA device (none visible)")
    for item in items:
        if "cuda" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(autouse=True)
def _cpu_unless_marked_cuda(request, monkeypatch):
    """Hide CUDA from tests not marked ``cuda`` (CPU is where bit-identity is promised)."""
    if request.node.get_closest_marker("cuda") is None:
        monkeypatch.setattr(torch.cuda, "is_available", lambda: False)


@pytest.fixture
def rng():
    """A local, seeded numpy Generator (no global state)."""
    return np.random.default_rng(0)


@pytest.fixture
def gen():
    """A local, seeded torch Generator."""
    return torch.Generator().manual_seed(0)
