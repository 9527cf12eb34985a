"""Fixtures shared by tests/link; the helper functions live in attachkit.py."""

import os

import pytest


@pytest.fixture
def cgroup_dir():
    """A fresh cgroup v2 directory (removed afterwards) to attach cgroup programs to."""
    root = "/sys/fs/cgroup/unified"
    if not os.path.exists(os.path.join(root, "cgroup.procs")):
        root = "/sys/fs/cgroup"
    path = os.path.join(root, f"pybpf_test_{os.getpid()}")
    os.mkdir(path)
    yield path
    os.rmdir(path)
