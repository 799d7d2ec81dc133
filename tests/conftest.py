"""Shared test setup."""

import pytest
import torch


@pytest.fixture(autouse=True)
def one_thread():
    # Tests use tiny models, where two intra-op threads fighting over two (often shared) cores
    # are slower than one; results do not depend on the thread count.
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="module")
def weights():
    """The verified FID Inception weights; the test is skipped when they cannot be had offline."""
    from xraygan.errors import XrayganError
    from xraygan.metrics.weights import ensure_weights

    try:
        return ensure_weights()
    except XrayganError as e:
        if "could not download" in str(e):
            pytest.skip(f"FID weights unavailable offline: {e}")
        raise
