import os

import pytest


def _bpf_works() -> bool:
    if os.geteuid() != 0:
        return False
    from pybpf.features import probes
    return probes._load(probes._RET0, probes.ProgType.SOCKET_FILTER).ok


BPF_OK = _bpf_works()


def pytest_collection_modifyitems(config, items):
    skip = pytest.mark.skip(reason="needs root and a kernel with bpf(2)")
    for item in items:
        if "kernel" in item.keywords and not BPF_OK and str(item.fspath).startswith(
                os.path.dirname(__file__)):
            item.add_marker(skip)


@pytest.fixture(autouse=True)
def fresh_probe_cache():
    from pybpf import features
    features.clear_cache()
    yield
    features.clear_cache()
