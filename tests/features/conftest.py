import pytest


@pytest.fixture(autouse=True)
def fresh_probe_cache():
    from pybpf import features
    features.clear_cache()
    yield
    features.clear_cache()
