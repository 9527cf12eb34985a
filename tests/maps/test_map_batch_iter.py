"""Batch operations agree with per-element ones; iteration survives concurrent deletion."""

from __future__ import annotations

import random
import threading

import pytest
from hypothesis import given, settings, strategies as st

from mapkit import needs_root
from pybpf.maps import MapIterationAborted, MapSpec, possible_cpus
from pybpf.maps.iterate import iter_raw_keys

pytestmark = [pytest.mark.kernel, needs_root]


@settings(max_examples=15, deadline=None, derandomize=True)
@given(st.dictionaries(st.integers(0, 2**32 - 1), st.integers(0, 2**64 - 1), max_size=300),
       st.integers(1, 64))
def test_batch_matches_elementwise(contents, chunk):
    with MapSpec.hash("I", "Q", 512).create() as m:
        assert m.update_batch(contents.keys(), contents.values()) == len(contents)
        keys, values = m.lookup_batch(chunk=chunk)
        assert len(keys) == len(set(keys)) == len(contents)
        assert dict(zip(keys, values)) == dict(m.items()) == contents
        assert dict(m.items_batch(chunk=chunk)) == contents


def test_array_batch_and_percpu_batch():
    with MapSpec.array("Q", 100).create() as m:
        m.update_batch(range(0, 100, 2), [i * 3 for i in range(0, 100, 2)])
        keys, values = m.lookup_batch(chunk=7)
        assert keys == list(range(100))
        assert values == [i * 3 if i % 2 == 0 else 0 for i in range(100)]
        assert values == list(m.values())
    with MapSpec.percpu_hash("I", "I", 64).create() as m:
        m.update_batch([1, 2], [5, 6])  # one value is written to every CPU
        assert m[1] == [5] * possible_cpus()
        keys, values = m.lookup_batch()
        assert dict(zip(keys, values)) == dict(m.items())


def test_lookup_and_delete_batch_and_delete_batch():
    with MapSpec.lru_hash("Q", "I", 1000).create() as m:
        m.update_batch(range(500), range(500))
        assert m.delete_batch(range(100)) == 100
        keys, values = m.lookup_and_delete_batch(chunk=33)
        assert sorted(keys) == list(range(100, 500)) and sorted(values) == sorted(keys)
        assert len(m) == 0


def test_batch_fallback_for_types_that_refuse():
    with MapSpec.lpm_trie("ipv4", "I", 64).create() as m:
        nets = [f"10.{i}.0.0/16" for i in range(20)]
        assert m.update_batch(nets, range(20)) == 20  # tries refuse batches: per element
        keys, values = m.lookup_batch()
        assert sorted(values) == list(range(20))
        assert m.delete_batch(nets[:5]) == 5 and len(m) == 15


def test_iteration_while_another_thread_deletes():
    n = 20000
    with MapSpec.hash("I", "I", n).create() as m:
        m.update_batch(range(n), range(n))
        order = list(range(n))
        random.Random(1).shuffle(order)
        survivors = set(order[: n // 4])  # never deleted: must all be seen
        doomed = order[n // 4:]
        started = threading.Event()

        def deleter():
            started.set()
            for k in doomed:
                del m[k]

        t = threading.Thread(target=deleter)
        t.start()
        started.wait()
        seen = []
        for k in m:
            seen.append(k)
        t.join()
        assert len(seen) == len(set(seen)), "a key was yielded twice"
        assert survivors <= set(seen)


def test_iteration_when_every_current_key_is_deleted():
    """Worst case: the key the iterator stands on is always deleted before it moves on."""
    with MapSpec.hash("I", "I", 4096).create() as m:
        m.update_batch(range(4096), range(4096))
        seen = []
        for raw in iter_raw_keys(m.fd, 4, m.type):
            seen.append(raw)
            m.delete(raw)  # forces the kernel to restart from the first key every time
        assert len(seen) == len(set(seen)) == 4096 and len(m) == 0


class _ChurningMap:
    """A model of the kernel's hash-map get_next_key (restart at the first key when the
    given key is gone) with an adversary that, after every step, deletes all keys but a
    permanent first one and adds a fresh key: iteration could go on forever."""

    def __init__(self):
        self.keys = [b"AAAA", b"k000"]
        self.fresh = 1

    def get_next_key(self, fd, key, out, context=""):
        key = None if key is None else bytes(key)
        if not self.keys:
            return False
        if key is None or key not in self.keys:
            out[:] = self.keys[0]
            return True
        i = self.keys.index(key) + 1
        if i == len(self.keys):
            return False
        out[:] = self.keys[i]
        return True

    def churn(self):
        self.keys = [b"AAAA", b"k%03d" % self.fresh]
        self.fresh += 1


def test_restarts_are_bounded(monkeypatch):
    import pybpf.maps.iterate as it
    fake = _ChurningMap()
    monkeypatch.setattr(it, "map_get_next_key", fake.get_next_key)
    got = []
    with pytest.raises(MapIterationAborted, match="more than max_entries 8"):
        for key in it.iter_raw_keys(0, 4, MapSpec.hash("I", "I", 1).type, max_entries=8):
            got.append(key)
            fake.churn()
    assert len(got) == len(set(got)) == 10


def test_walk_steps_are_bounded(monkeypatch):
    """A get_next_key that never gets anywhere new (always answers an old key) aborts."""
    import pybpf.maps.iterate as it
    fake = _ChurningMap()
    fake.get_next_key = lambda fd, key, out, context="": out.__setitem__(slice(None), b"AAAA") \
        or True
    monkeypatch.setattr(it, "map_get_next_key", fake.get_next_key)
    with pytest.raises(MapIterationAborted, match="steps without a new key"):
        list(it.iter_raw_keys(0, 4, MapSpec.hash("I", "I", 1).type, max_restarts=3))
