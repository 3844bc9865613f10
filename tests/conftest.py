"""Fixtures shared by the package tests."""

import pytest
import torch


@pytest.fixture(autouse=True)
def one_thread():
    """Run each test on one thread: the tensors in tests are tiny, and a second thread only adds
    synchronisation, which was measured to stall 5-10x on a busy 2-core machine."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
