"""Context access of sk_skb, sk_msg, sk_lookup, cgroup_sock and lwt programs; socket helpers.

Minimal programs of our own, one rule each, for the program types and helpers
that bench/verifier_selftests.py found the simulator declining: each type's
``*_is_valid_access()``, bpf_sk_fullsock()/bpf_tcp_sock() (the argument's
socket seen as another type) and bpf_get_local_storage().
"""

from dsl import (Case, MapDef, R, add, call, exit_, jmp, ld_map, ldx, mov, r0, r1, r2, r3, r10, ret,
                 st)

CGROUP_SOCK, LWT_IN, LWT_XMIT, SK_SKB, SK_MSG, SK_LOOKUP, CGROUP_SKB = 9, 10, 12, 14, 16, 30, 8
BPF_SK_LOOKUP, INET4_POST_BIND = 36, 12  # enum bpf_attach_type
CGROUP_STORAGE = MapDef(19, 8, 16, 0, name="cg_storage")
HASH_KEY8 = MapDef(1, 8, 16, 4, name="hash8")


def _load(size, off):
    return [ldx(size, r0, r1, off), *ret()]


def _store(size, off):
    return [st(size, r1, off, 0), *ret()]


def _sk(helper, size, off):
    """cgroup_skb: skb->sk, NULL-checked, through a socket helper, NULL-checked, then a load."""
    return [ldx(8, r1, r1, 168), jmp("jeq", r1, 0, 5), call(helper), jmp("jeq", r0, 0, 3),
            ldx(size, r0, r0, off), *ret(), *ret()]


def _pkt_write():
    return [ldx(4, r2, r1, 76), ldx(4, r3, r1, 80), mov(r0, r2), add(r0, 1),
            jmp("jgt", r0, R(3), 1), st(1, r2, 0, 0), *ret()]


CASES = [
    # sk_skb: mark is not readable, tc_index and priority writable, cb not
    Case("sk_skb_mark", SK_SKB, _load(4, 8), "invalid bpf_context access off=8 size=4"),
    Case("sk_skb_family", SK_SKB, _load(4, 88)),
    Case("sk_skb_priority_store", SK_SKB, _store(4, 32)),
    Case("sk_skb_cb_store", SK_SKB, _store(4, 48), "invalid bpf_context access off=48 size=4"),
    Case("sk_skb_pkt_write", SK_SKB, _pkt_write()),
    # sk_msg: read only; data pointers are 8 bytes wide
    Case("sk_msg_size", SK_MSG, _load(4, 68)),
    Case("sk_msg_data_narrow", SK_MSG, _load(4, 0), "invalid bpf_context access off=0 size=4"),
    Case("sk_msg_store", SK_MSG, _store(4, 16), "invalid bpf_context access off=16 size=4"),
    Case("sk_msg_sk_family", SK_MSG, [ldx(8, r1, r1, 72), ldx(4, r0, r1, 4), *ret()]),
    # sk_lookup: ctx->sk is a socket or NULL; remote_port and its padding are 2-byte fields
    Case("sk_lookup_sk_unchecked", SK_LOOKUP, [ldx(8, r1, r1, 0), ldx(4, r0, r1, 4), *ret()],
         "R1 invalid mem access 'sock_or_null'", attach=BPF_SK_LOOKUP),
    Case("sk_lookup_sk_checked", SK_LOOKUP,
         [ldx(8, r1, r1, 0), jmp("jeq", r1, 0, 1), ldx(4, r0, r1, 4), *ret()], attach=BPF_SK_LOOKUP),
    Case("sk_lookup_remote_port_half", SK_LOOKUP, _load(2, 36), attach=BPF_SK_LOOKUP),
    Case("sk_lookup_padding_byte", SK_LOOKUP, _load(1, 39), attach=BPF_SK_LOOKUP),
    Case("sk_lookup_cookie_half", SK_LOOKUP, _load(4, 4), "invalid bpf_context access off=4 size=4",
         attach=BPF_SK_LOOKUP),
    Case("sk_lookup_family_byte", SK_LOOKUP, _load(1, 9), attach=BPF_SK_LOOKUP),
    # cgroup_sock: sock_create (attach 0 means it) may set mark; src_ip4 only after bind
    Case("cgroup_sock_mark_store", CGROUP_SOCK, [st(4, r1, 16, 1), mov(r0, 1), exit_()]),
    Case("cgroup_sock_family_store", CGROUP_SOCK, [st(4, r1, 4, 1), mov(r0, 1), exit_()],
         "invalid bpf_context access off=4 size=4"),
    Case("cgroup_sock_src_ip4_create", CGROUP_SOCK, _load(4, 24), "invalid bpf_context access off=24 size=4"),
    Case("cgroup_sock_src_ip4_post_bind", CGROUP_SOCK, _load(4, 24), attach=INET4_POST_BIND),
    Case("cgroup_sock_mark_post_bind", CGROUP_SOCK, _load(4, 16), "invalid bpf_context access off=16 size=4",
         attach=INET4_POST_BIND),
    # lwt: no socket fields; lwt_in reads packets but may not write them, lwt_xmit may
    Case("lwt_in_family", LWT_IN, _load(4, 88), "invalid bpf_context access off=88 size=4"),
    Case("lwt_in_cb_store", LWT_IN, _store(4, 52)),
    Case("lwt_in_pkt_write", LWT_IN, _pkt_write(), "cannot write into packet"),
    Case("lwt_xmit_pkt_write", LWT_XMIT, _pkt_write()),
    # bpf_sk_fullsock()/bpf_tcp_sock(): what skb->sk cannot read, the full socket can
    Case("fullsock_type", CGROUP_SKB, _sk(95, 4, 8)),
    Case("fullsock_unchecked", CGROUP_SKB,
         [ldx(8, r1, r1, 168), jmp("jeq", r1, 0, 2), call(95), ldx(4, r0, r0, 8), *ret()],
         "R0 invalid mem access 'sock_or_null'"),
    Case("fullsock_null_arg", CGROUP_SKB, [ldx(8, r1, r1, 168), call(95), *ret()],
         "R1 type=sock_common_or_null expected=sock_common, sock, tcp_sock, xdp_sock"),
    Case("tcp_sock_bytes_acked", CGROUP_SKB, _sk(96, 8, 88)),
    Case("tcp_sock_wide_u32", CGROUP_SKB, _sk(96, 8, 4), "R0 invalid tcp_sock access off=4 size=8"),
    Case("tcp_sock_past_end", CGROUP_SKB, _sk(96, 4, 112), "R0 invalid tcp_sock access off=112 size=4"),
    # bpf_get_local_storage(): the cgroup storage value, never NULL; flags must be 0
    Case("local_storage_value", CGROUP_SKB,
         [ld_map(r1, CGROUP_STORAGE), mov(r2, 0), call(81), ldx(8, r1, r0, 8), *ret()]),
    Case("local_storage_oob", CGROUP_SKB,
         [ld_map(r1, CGROUP_STORAGE), mov(r2, 0), call(81), ldx(8, r1, r0, 12), *ret()],
         "R0 min value is outside of the allowed memory range"),
    Case("local_storage_flags", CGROUP_SKB, [ld_map(r1, CGROUP_STORAGE), mov(r2, 1), call(81), *ret()],
         "get_local_storage() doesn't support non-zero flags"),
    Case("local_storage_wrong_map", CGROUP_SKB, [ld_map(r1, HASH_KEY8), mov(r2, 0), call(81), *ret()],
         "cannot pass map_type 1 into func bpf_get_local_storage#81"),
    Case("lookup_in_cgroup_storage", CGROUP_SKB,
         [st(8, r10, -8, 0), mov(r2, r10), add(r2, -8), ld_map(r1, CGROUP_STORAGE), call(1), *ret()],
         "cannot pass map_type 19 into func bpf_map_lookup_elem#1"),
]
