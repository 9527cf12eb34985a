"""Strict alignment, helpers that may not see packet pointers, socket field access.

Minimal programs of our own for rules bench/verifier_selftests.py showed the
simulator missing: BPF_F_STRICT_ALIGNMENT (packets checked as if NET_IP_ALIGN
were 2), bpf_func_proto.pkt_access, and what struct bpf_sock fields each socket
pointer type may read.
"""

from dsl import (ARRAY, Case, I, R, add, call, exit_, jmp, ld_map, ldx, lookup, mov, r0, r1, r2, r3, r4,
                 r6, ret, st)

SF, CLS, CGROUP_SKB = 1, 3, 8
STRICT = 1  # BPF_F_STRICT_ALIGNMENT
DATA, DATA_END, SK = 76, 80, 168


def _pkt(n):
    """r2 = skb->data, r3 = skb->data_end, and n bytes at r2 checked (else return 0)."""
    return [ldx(4, r2, r1, DATA), ldx(4, r3, r1, DATA_END), mov(r0, r2), add(r0, n),
            jmp("jgt", r0, R(3), 1)]


def _pkt_load(size, off):
    return [*_pkt(8), ldx(size, r0, r2, off), *ret()]


def _sk(size, off):
    """cgroup_skb: r1 = skb->sk (sock_common or NULL), then a load from it."""
    return [ldx(8, r1, r1, SK), jmp("jeq", r1, 0, 3), ldx(size, r0, r1, off), *ret(), *ret()]


CASES = [
    # x86-64 has efficient unaligned access: only the flag makes packets strict, at NET_IP_ALIGN 2
    Case("pkt_unaligned_not_strict", CLS, _pkt_load(4, 0)),
    Case("pkt_strict_ip_align", CLS, _pkt_load(4, 2), flags=STRICT),
    Case("pkt_strict_misaligned", CLS, _pkt_load(4, 0), "misaligned packet access off 2+0+0+0 size 4",
         flags=STRICT),
    Case("pkt_strict_byte_ok", CLS, _pkt_load(1, 3), flags=STRICT),
    Case("ctx_strict_misaligned", SF, [ldx(2, r0, r1, 49), exit_()],
         "misaligned context access off 0+0+49 size 2", flags=STRICT),
    Case("value_strict_misaligned", SF,
         [*lookup(ARRAY), jmp("jeq", r0, 0, 1), ldx(8, r0, r0, 4), *ret()],
         "misaligned value access off 0+0+4 size 8", flags=STRICT),
    Case("value_unaligned_not_strict", SF,
         [*lookup(ARRAY), jmp("jeq", r0, 0, 1), ldx(4, r0, r0, 2), *ret()]),
    # only helpers whose prototype sets pkt_access may be given packet pointers
    Case("pkt_to_skb_load_bytes", CLS,
         [mov(r6, r1), *_pkt(8)[:-1], jmp("jgt", r0, R(3), 5), mov(r1, r6), mov(r3, r2), mov(r2, 0),
          mov(r4, 4), call(26), *ret()],
         "helper access to the packet is not allowed"),
    Case("pkt_key_to_map_lookup", CLS,
         [*_pkt(8)[:-1], ld_map(r1, ARRAY), jmp("jgt", r0, R(3), 1), call(1), *ret()]),
    # skb->sk is a sock_common: type/protocol/mark/priority need bpf_sk_fullsock()
    Case("skb_sk_family", CGROUP_SKB, _sk(4, 4)),
    Case("skb_sk_type_refused", CGROUP_SKB, _sk(4, 8), "R1 invalid sock_common access off=8 size=4"),
    Case("skb_sk_dst_port_narrow", CGROUP_SKB, _sk(2, 48)),
    Case("skb_sk_dst_port_pad", CGROUP_SKB, _sk(2, 50), "R1 invalid sock_common access off=50 size=2"),
    Case("skb_sk_src_ip6_byte", CGROUP_SKB, _sk(1, 31)),
    Case("skb_sk_state_byte_inside", CGROUP_SKB, _sk(1, 73), "R1 invalid sock_common access off=73 size=1"),
    # the map's own struct (bpf_array) may be read by BTF, never written or read before it
    Case("map_ptr_store", SF, [ld_map(r1, ARRAY), st(4, r1, 0, 0), *ret()],
         "only read from bpf_array is supported"),
    Case("map_ptr_negative_read", SF, [ld_map(r1, ARRAY), ldx(8, r0, r1, -8), *ret()],
         "R1 is bpf_array invalid negative access: off=-8"),
    # every LDX opcode passes 6.18's opcode table; a mode other than MEM/MEMSX fails on the walk
    Case("ldx_imm_mode", SF, [I(0x01, 0, 1, 0, 0), exit_()], "BPF_LDX uses reserved fields"),
]
