"""Shared test setup.

pytest runs with ``--import-mode=importlib``, which puts no test folder on ``sys.path``: this one is put there so
that test modules import the shared helpers (``_evaluation_helpers``, ``_training_helpers``, ``_tts_helpers``)
with a plain ``import``.
"""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))


@pytest.fixture(scope="module")
def one_torch_thread():
    """Tiny models gain nothing from intra-op threads, and on a busy machine the thread hand-offs dominate
    (``pytestmark = pytest.mark.usefixtures("one_torch_thread")`` in a module)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
