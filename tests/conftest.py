"""Fixtures shared by the unit tests."""
import pytest
import torch


@pytest.fixture
def one_torch_thread():
    """Small problems run on one intra-op thread: oversubscribed threads on shared CPU cores are far slower.

    Modules opt in with ``pytestmark = pytest.mark.usefixtures("one_torch_thread")``; the previous
    thread count is restored afterwards.
    """
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
