"""Program contexts as BPF_PROG_TEST_RUN builds them: ``xdp_md`` and ``__sk_buff``.

The kernel rewrites context loads: ``xdp_md.data`` is a 32-bit field in the
UAPI struct but loading it yields a 64-bit packet pointer. The context region
therefore has a hook that serves those fields as pointers into the packet
region and enforces which fields a program may write. Packet layout and
output follow net/bpf/test_run.c: XDP gets 256 bytes of headroom and returns
the packet from ``data_meta``; skb programs see an Ethernet frame whose
``protocol``/``pkt_type`` come from ``eth_type_trans`` on the loopback device,
and non-L2 types (socket filters) start at the network header and get the
Ethernet header back zeroed in ``data_out``.
"""

from __future__ import annotations

import errno
import struct

from .errors import VMError
from .memory import Memory

ETH_HLEN = 14
XDP_PACKET_HEADROOM = 256
XDP_FRAME_SIZE = 40  # sizeof(struct xdp_frame): the start of usable headroom
PAGE_SIZE = 4096
SKB_SHARED_INFO = 320  # SKB_DATA_ALIGN(sizeof(struct skb_shared_info)) on x86-64
LOOPBACK_IFINDEX = 1


class ProgType:
    """``enum bpf_prog_type`` values the VM gives a specific context to."""
    SOCKET_FILTER = 1
    KPROBE = 2
    SCHED_CLS = 3
    SCHED_ACT = 4
    TRACEPOINT = 5
    XDP = 6
    PERF_EVENT = 7
    CGROUP_SKB = 8
    RAW_TRACEPOINT = 17


_PROG_NAMES = {name.lower(): v for name, v in vars(ProgType).items() if name.isupper()}
_PROG_NAMES.update({"tc": ProgType.SCHED_CLS, "classifier": ProgType.SCHED_CLS,
                    "socket": ProgType.SOCKET_FILTER, "raw_tp": ProgType.RAW_TRACEPOINT})
SKB_TYPES = {ProgType.SOCKET_FILTER, ProgType.SCHED_CLS, ProgType.SCHED_ACT, ProgType.CGROUP_SKB}
L2_TYPES = {ProgType.SCHED_CLS, ProgType.SCHED_ACT}


def prog_type_of(value) -> int:
    """An ``enum bpf_prog_type`` from an int, an IntEnum or a name like "xdp"."""
    if value is None:
        return 0
    if isinstance(value, str):
        key = value.lower().removeprefix("bpf_prog_type_")
        if key not in _PROG_NAMES:
            raise VMError(f"program type {value!r} is not known to the VM")
        return _PROG_NAMES[key]
    return int(value)


def _ctx_error(off: int, size: int, k: int) -> VMError:
    return VMError(f"invalid bpf_context access off={off} size={size}", index=k)


class Packet:
    """Packet data in one buffer: ``meta <= data <= end`` index into ``buf``."""

    def __init__(self, mem: Memory, buf: bytearray, meta: int, data: int, end: int,
                 *, frame_start: int = 0, limit: int | None = None):
        self.mem, self.buf = mem, buf
        self.meta, self.data, self.end = meta, data, end
        self.frame_start = frame_start
        self.limit = len(buf) if limit is None else limit
        self.base = mem.add("packet", buf)
        self._bounds()

    def _bounds(self) -> None:
        self.mem.set_bounds(self.base, self.base + self.meta, self.base + self.end)

    def payload(self) -> bytes:
        return bytes(self.buf[self.data:self.end])

    def adjust_head(self, delta: int) -> int:
        metalen = self.data - self.meta
        data = self.data + delta
        if data < self.frame_start + metalen or data > self.end - ETH_HLEN:
            return -errno.EINVAL
        if metalen:
            self.buf[self.meta + delta:data] = self.buf[self.meta:self.data]
        self.meta += delta
        self.data = data
        self._bounds()
        return 0

    def adjust_meta(self, delta: int) -> int:
        meta = self.meta + delta
        if meta < self.frame_start or meta > self.data:
            return -errno.EINVAL
        metalen = self.data - meta
        if metalen & 3 or metalen > 32:
            return -errno.EACCES
        self.meta = meta
        self._bounds()
        return 0

    def adjust_tail(self, delta: int) -> int:
        end = self.end + delta
        if end > self.limit or end < self.data + ETH_HLEN:
            return -errno.EINVAL
        if delta > 0:
            self.buf[self.end:end] = bytes(delta)
        self.end = end
        self._bounds()
        return 0


class XdpCtx:
    """``struct xdp_md``: data, data_end, data_meta, ingress_ifindex, rx_queue_index, egress_ifindex."""

    SIZE = 24

    def __init__(self, pkt: Packet, fields: dict[str, int]):
        self.pkt = pkt
        self.buf = bytearray(struct.pack("<6I", 0, 0, 0, fields.get("ingress_ifindex", 0),
                                         fields.get("rx_queue_index", 0), 0))

    def load(self, off: int, size: int, k: int, signed: bool = False) -> int:
        if off < 0 or off + size > self.SIZE or off % size:
            raise _ctx_error(off, size, k)
        pkt = self.pkt
        if off in (0, 4, 8):
            if size != 4:
                raise _ctx_error(off, size, k)
            return pkt.base + (pkt.data, pkt.end, pkt.meta)[off // 4]
        return int.from_bytes(self.buf[off:off + size], "little", signed=signed) & (2**64 - 1)

    def store(self, off: int, size: int, value: int, k: int) -> None:
        raise _ctx_error(off, size, k)

    def out(self) -> bytes:
        pkt = self.pkt
        return struct.pack("<3I", pkt.data - pkt.meta, pkt.end - pkt.meta, 0) + bytes(self.buf[12:])


# struct __sk_buff offsets (include/uapi/linux/bpf.h)
SKB_FIELDS = {
    "len": (0, 4), "pkt_type": (4, 4), "mark": (8, 4), "queue_mapping": (12, 4),
    "protocol": (16, 4), "vlan_present": (20, 4), "vlan_tci": (24, 4), "vlan_proto": (28, 4),
    "priority": (32, 4), "ingress_ifindex": (36, 4), "ifindex": (40, 4), "tc_index": (44, 4),
    "cb": (48, 20), "hash": (68, 4), "tc_classid": (72, 4), "data": (76, 4), "data_end": (80, 4),
    "napi_id": (84, 4), "family": (88, 4), "remote_ip4": (92, 4), "local_ip4": (96, 4),
    "remote_ip6": (100, 16), "local_ip6": (116, 16), "remote_port": (132, 4),
    "local_port": (136, 4), "data_meta": (140, 4), "flow_keys": (144, 8), "tstamp": (152, 8),
    "wire_len": (160, 4), "gso_segs": (164, 4), "sk": (168, 8), "gso_size": (176, 4),
    "tstamp_type": (180, 1), "hwtstamp": (184, 8),
}
SKB_SIZE = 192
_SKB_WRITABLE = [SKB_FIELDS[f] for f in ("mark", "priority", "cb", "tc_index", "tc_classid",
                                          "queue_mapping", "tstamp")]
# Fields test_run copies back into ctx_out (convert_skb_to___skb).
_SKB_OUT = ("mark", "priority", "ingress_ifindex", "ifindex", "cb", "tstamp", "wire_len",
            "gso_segs", "gso_size", "hwtstamp")


class SkbCtx:
    """``struct __sk_buff`` over a packet; len/data/data_end/data_meta follow the packet."""

    SIZE = SKB_SIZE

    def __init__(self, pkt: Packet, buf: bytearray):
        self.pkt = pkt
        self.buf = buf

    def load(self, off: int, size: int, k: int, signed: bool = False) -> int:
        if off < 0 or off + size > self.SIZE or off % size:
            raise _ctx_error(off, size, k)
        pkt = self.pkt
        if off in (76, 80, 140):
            if size != 4:
                raise _ctx_error(off, size, k)
            return pkt.base + {76: pkt.data, 80: pkt.end, 140: pkt.meta}[off]
        if off in (144, 168):  # flow_keys, sk: no such objects in test_run
            return 0
        if off == 0 and size == 4:
            return pkt.end - pkt.data
        return int.from_bytes(self.buf[off:off + size], "little", signed=signed) & (2**64 - 1)

    def store(self, off: int, size: int, value: int, k: int) -> None:
        for start, n in _SKB_WRITABLE:
            if start <= off and off + size <= start + n and (size == n or start == 48 and size == 4):
                self.buf[off:off + size] = value.to_bytes(size, "little")
                return
        raise _ctx_error(off, size, k)

    def out(self) -> bytes:
        out = bytearray(self.SIZE)
        for name in _SKB_OUT:
            off, n = SKB_FIELDS[name]
            out[off:off + n] = self.buf[off:off + n]
        return bytes(out)


def _ctx_fields(ctx, size: int, fields: dict[str, tuple[int, int]]) -> bytearray:
    """A context given as bytes (the UAPI struct, maybe truncated) or a dict of field values."""
    buf = bytearray(size)
    if ctx is None:
        return buf
    if isinstance(ctx, dict):
        for name, value in ctx.items():
            if name not in fields:
                raise VMError(f"unknown context field {name!r}")
            off, n = fields[name]
            if isinstance(value, (bytes, bytearray)):
                buf[off:off + n] = bytes(value).ljust(n, b"\0")[:n]
            else:
                buf[off:off + n] = (value & ((1 << (8 * n)) - 1)).to_bytes(n, "little")
        return buf
    data = bytes(ctx)
    if len(data) > size:
        raise VMError(f"ctx_in is {len(data)} bytes, larger than the context ({size})")
    buf[:len(data)] = data
    return buf


_XDP_FIELDS = {"data": (0, 4), "data_end": (4, 4), "data_meta": (8, 4), "ingress_ifindex": (12, 4),
               "rx_queue_index": (16, 4), "egress_ifindex": (20, 4)}


class Setup:
    """What one run needs: the ctx address and how to produce data_out/ctx_out."""

    def __init__(self, ctx_addr: int, packet: Packet | None, finish):
        self.ctx_addr, self.packet, self._finish = ctx_addr, packet, finish

    def finish(self) -> tuple[bytes, bytes | None]:
        return self._finish()


def setup(mem: Memory, prog_type: int, ctx, data: bytes | None) -> Setup:
    if prog_type == ProgType.XDP:
        return _setup_xdp(mem, ctx, data or b"")
    if prog_type in SKB_TYPES:
        return _setup_skb(mem, prog_type, ctx, data or b"")
    # Any other type: ctx is an opaque read-only buffer (pt_regs, tracepoint args, ...).
    buf = bytearray(ctx if isinstance(ctx, (bytes, bytearray)) else b"")
    addr = mem.add("ctx", buf, writable=False)
    return Setup(addr, None, lambda: (bytes(data or b""), bytes(buf) if ctx is not None else None))


def _setup_xdp(mem: Memory, ctx, data: bytes) -> Setup:
    fields = _ctx_fields(ctx, XdpCtx.SIZE, _XDP_FIELDS)
    d_data, d_end, d_meta, ingress, rxq, egress = struct.unpack("<6I", fields)
    metalen = d_data - d_meta if ctx is not None else 0
    if ctx is not None and (d_end not in (0, len(data) - d_data) or metalen < 0 or metalen > len(data)
                            or metalen & 3 or metalen > 32 or egress):
        raise VMError("xdp_md in ctx_in is inconsistent with data_in (EINVAL)")
    limit = PAGE_SIZE - SKB_SHARED_INFO
    if len(data) < ETH_HLEN or XDP_PACKET_HEADROOM + len(data) > limit:
        raise VMError(f"XDP data_in must be {ETH_HLEN}..{limit - XDP_PACKET_HEADROOM} bytes, "
                      f"got {len(data)} (EINVAL)")
    buf = bytearray(limit)
    start = XDP_PACKET_HEADROOM - metalen
    buf[start:start + len(data)] = data
    pkt = Packet(mem, buf, start, XDP_PACKET_HEADROOM, start + len(data),
                 frame_start=XDP_FRAME_SIZE, limit=limit)
    # Without ctx_in, BPF_PROG_TEST_RUN receives the packet on the namespace's loopback (ifindex 1).
    hook = XdpCtx(pkt, {"ingress_ifindex": ingress if ctx is not None else 1, "rx_queue_index": rxq})
    addr = mem.add("ctx", hook.buf, hook=hook)

    def finish():
        return bytes(buf[pkt.meta:pkt.end]), (hook.out() if ctx is not None else None)
    return Setup(addr, pkt, finish)


def _eth_type_trans(frame: bytes) -> tuple[int, int]:
    """(protocol as the __be16 the ctx shows, pkt_type) on loopback (address and broadcast all zero)."""
    dest = frame[:6]
    if dest == bytes(6):
        pkt_type = 0  # PACKET_HOST
    elif dest[0] & 1:  # loopback's broadcast address is all zeros: ff:ff:.. is multicast
        pkt_type = 2  # PACKET_MULTICAST
    else:
        pkt_type = 3  # PACKET_OTHERHOST
    proto = int.from_bytes(frame[12:14], "big")
    if proto < 0x600:  # an 802.3 length field
        proto = 0x0001 if frame[14:16] == b"\xff\xff" else 0x0004  # ETH_P_802_3 / ETH_P_802_2
    return int.from_bytes(proto.to_bytes(2, "big"), "little"), pkt_type


def _setup_skb(mem: Memory, prog_type: int, ctx, data: bytes) -> Setup:
    if len(data) < ETH_HLEN:
        raise VMError(f"skb data_in must be at least {ETH_HLEN} bytes (ETH_HLEN), got {len(data)}")
    fields = _ctx_fields(ctx, SKB_SIZE, SKB_FIELDS)
    l2 = prog_type in L2_TYPES
    buf = bytearray(data)
    start = 0 if l2 else ETH_HLEN
    pkt = Packet(mem, buf, start, start, len(buf))
    protocol, pkt_type = _eth_type_trans(data)
    put = lambda name, v: fields.__setitem__(  # noqa: E731
        slice(SKB_FIELDS[name][0], SKB_FIELDS[name][0] + 4), v.to_bytes(4, "little"))
    put("protocol", protocol)
    put("pkt_type", pkt_type)
    put("ifindex", LOOPBACK_IFINDEX)
    if int.from_bytes(fields[160:164], "little") == 0:
        put("wire_len", len(data) - start)
    if protocol == 0x0008 and len(data) >= ETH_HLEN + 20:  # ETH_P_IP: the fake socket's addresses
        put("family", 2)
        put("local_ip4", int.from_bytes(data[26:30], "little"))
        put("remote_ip4", int.from_bytes(data[30:34], "little"))
    elif protocol == 0xDD86 and len(data) >= ETH_HLEN + 40:  # ETH_P_IPV6
        put("family", 10)
        fields[116:132] = data[22:38]
        fields[100:116] = data[38:54]
    hook = SkbCtx(pkt, fields)
    addr = mem.add("ctx", fields, hook=hook)

    def finish():
        out = bytes(buf[:pkt.end]) if l2 else bytes(ETH_HLEN) + bytes(buf[ETH_HLEN:pkt.end])
        return out, (hook.out() if ctx is not None else None)
    return Setup(addr, pkt, finish)
