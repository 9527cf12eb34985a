"""Batch operations: one syscall and one buffer per batch, decoded in bulk.

Kernels refuse batches for some map types (LPM tries, fd arrays, queues:
ENOTSUPP or EINVAL); then the same call falls back to one syscall per element
so callers never need to know which types batch.
"""

from __future__ import annotations

import errno

from pybpf.syscall import map_cmds as cmds
from pybpf.syscall.errors import BPFError, InvalidArgument, KeyNotFound, MapFull, NotSupported

TYPE_CHECKING = False  # typing is not imported at run time (start-up cost): pybpf._record
if TYPE_CHECKING:
    from typing import Iterator
    from .map import Map

__all__ = ["iter_batches", "lookup_all", "update_batch", "delete_batch", "DEFAULT_CHUNK"]

DEFAULT_CHUNK = 16384
_REFUSED = (NotSupported, InvalidArgument)


def _decode_values(m: Map, buf: memoryview, count: int) -> list:
    layout, ncpus, stride = m._vlayout, m._ncpus, m._vstride
    if ncpus == 1 and stride == m.value_size:
        return layout.decode_many(buf, count, stride)
    flat = layout.decode_many(buf, count * ncpus, stride)
    return [flat[i:i + ncpus] for i in range(0, count * ncpus, ncpus)]


def iter_batches(m: Map, chunk: int | None = None, *, delete: bool = False
                 ) -> Iterator[tuple[list, list]]:
    """Yield ``(keys, values)`` lists, one pair per BPF_MAP_LOOKUP[_AND_DELETE]_BATCH call."""
    fd, ks, vsize = m.fd, m.key_size, m._vbuf_size
    n = max(1, min(chunk or DEFAULT_CHUNK, m.max_entries or 1))
    call = cmds.map_lookup_and_delete_batch if delete else cmds.map_lookup_batch
    what = "lookup_and_delete_batch" if delete else "lookup_batch"
    keys, values = bytearray(n * ks), bytearray(n * vsize)
    # The batch cursor is opaque: a bucket index for hash maps, the previous key for
    # arrays. It is at least key_size bytes in every implementation.
    tok_in, tok_out = bytearray(max(ks, 8)), bytearray(max(ks, 8))
    first = True
    while True:
        try:
            count, done = call(fd, None if first else tok_in, tok_out, keys, values, n, 0, 0,
                               f"{m._ctx}: {what}")
        except _REFUSED:
            if not first:
                raise
            yield _per_element(m, delete)
            return
        except BPFError as err:
            if err.errno != errno.ENOSPC:
                raise
            n *= 2  # a hash bucket holds more elements than one batch: grow and retry
            keys, values = bytearray(n * ks), bytearray(n * vsize)
            continue
        if count:
            yield (m._klayout.decode_many(memoryview(keys), count, ks),
                   _decode_values(m, memoryview(values), count))
        if done:
            return
        tok_in, tok_out = tok_out, tok_in
        first = False


def _per_element(m: Map, delete: bool) -> tuple[list, list]:
    fd, buf = m.fd, bytearray(m._vbuf_size)
    keys, values = [], []
    op = cmds.map_lookup_elem
    for raw in list(m.iter_raw_keys()) if delete else m.iter_raw_keys():
        try:
            op(fd, raw, buf, 0, m._ctx)
            if delete:
                cmds.map_delete_elem(fd, raw, 0, m._ctx)
        except KeyNotFound:
            continue
        keys.append(m.decode_key(raw))
        values.append(m.decode_value(buf))
    return keys, values


def lookup_all(m: Map, chunk: int | None, *, delete: bool) -> tuple[list, list]:
    keys: list = []
    values: list = []
    for k, v in iter_batches(m, chunk, delete=delete):
        keys += k
        values += v
    return keys, values


def _encode_values(m: Map, values: list) -> bytes:
    if m._ncpus == 1 and m._vstride == m.value_size:
        return m._vlayout.encode_many(values)
    return b"".join(map(m.encode_value, values))


def update_batch(m: Map, keys, values, flags: int = 0) -> int:
    keys, values = list(keys), list(values)
    if len(keys) != len(values):
        raise ValueError(f"{m._ctx}: update_batch got {len(keys)} keys and {len(values)} values")
    if not keys:
        return 0
    kbuf, vbuf = m._klayout.encode_many(keys), _encode_values(m, values)
    if len(kbuf) != len(keys) * m.key_size:
        raise ValueError(f"{m._ctx}: keys do not all have key_size {m.key_size}")
    try:
        return cmds.map_update_batch(m.fd, kbuf, vbuf, len(keys), flags, 0,
                                     f"{m._ctx}: update_batch")
    except MapFull as err:  # an array's E2BIG names the index that failed
        done = getattr(err, "count", 0) or 0
        new = m._write_error(err, keys[done] if done < len(keys) else keys[-1])
        if new is not err:
            new.count = done
        raise new from None
    except _REFUSED as err:
        if getattr(err, "count", 0):
            raise
    for k, v in zip(keys, values):
        m.update(k, v, flags)
    return len(keys)


def delete_batch(m: Map, keys) -> int:
    keys = list(keys)
    if not keys:
        return 0
    kbuf = m._klayout.encode_many(keys)
    try:
        return cmds.map_delete_batch(m.fd, kbuf, len(keys), 0, 0, f"{m._ctx}: delete_batch")
    except _REFUSED as err:
        if getattr(err, "count", 0):
            raise
    for k in keys:
        m.delete(k)
    return len(keys)
