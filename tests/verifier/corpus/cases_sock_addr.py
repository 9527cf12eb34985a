"""cgroup_sock_addr context and helpers per attach type; helpers newly given prototypes.

Minimal programs of our own, one rule each: sock_addr_is_valid_access() (an
address field exists only for its family's hooks, narrow reads, whole-word or
8-byte aligned writes), the hooks' return ranges, the helpers only some hooks
may call (bpf_bind, bpf_get_retval), and the prototypes of get_netns_cookie
(ctx or NULL), strtoul (an aligned ``long *``), sk_assign (socket or NULL),
skb_change_head and the cgroup_sockopt helpers.
"""

from dsl import Case, R, add, call, ldx, mov, r0, r1, r2, r3, r4, r10, ret, st, stx

SOCK_ADDR, SYSCTL, SOCKOPT, SK_LOOKUP, SCHED_CLS = 18, 23, 25, 30, 3
# enum bpf_attach_type
BIND4, CONNECT4, CONNECT6, SENDMSG4, SENDMSG6, RECVMSG4 = 8, 10, 11, 14, 15, 19
GETPEERNAME6, UNIX_CONNECT, GETSOCKOPT, SETSOCKOPT, SK_LOOKUP_HOOK = 30, 49, 21, 22, 36
BAD_CTX = "invalid bpf_context access"


def _load(size, off, r=1):
    return [ldx(size, r0, r1, off), *ret(r)]


def _store(size, off, r=1):
    return [mov(r2, 0), stx(size, r1, off, r2), *ret(r)]


def _c(name, attach, insns, expect=None, pt=SOCK_ADDR):
    return Case(name, pt, insns, expect, attach=attach)


CASES = [
    # address fields by family and hook
    _c("sa_user_ip4_connect4", CONNECT4, _load(4, 4)),
    _c("sa_user_ip4_connect6", CONNECT6, _load(4, 4), BAD_CTX),
    _c("sa_user_ip4_unix", UNIX_CONNECT, _load(4, 4), BAD_CTX),
    _c("sa_user_ip6_byte_getpeername6", GETPEERNAME6, _load(1, 9)),
    _c("sa_user_ip6_wide_write", SENDMSG6, _store(8, 16)),
    _c("sa_user_ip6_wide_write_unaligned", SENDMSG6, _store(8, 12), "invalid bpf_context access off=12 size=8"),
    _c("sa_user_ip6_narrow_write", CONNECT6, _store(2, 8), BAD_CTX),
    _c("sa_msg_src_ip4_sendmsg4", SENDMSG4, _store(4, 40)),
    _c("sa_msg_src_ip4_connect4", CONNECT4, _load(4, 40), BAD_CTX),
    _c("sa_msg_src_ip6_wide_last", SENDMSG6, _load(8, 56), BAD_CTX),
    _c("sa_user_port_narrow_read", UNIX_CONNECT, _load(2, 26)),
    _c("sa_user_port_narrow_write", CONNECT4, _store(2, 24), BAD_CTX),
    _c("sa_family_narrow", CONNECT4, _load(2, 28), BAD_CTX),
    _c("sa_protocol_write", CONNECT4, _store(4, 36), BAD_CTX),
    _c("sa_padding", SENDMSG6, _load(4, 60), BAD_CTX),
    _c("sa_sk_deref", CONNECT4, [ldx(8, r1, r1, 64), ldx(4, r0, r1, 4), *ret(1)]),
    _c("sa_sk_narrow", CONNECT4, _load(4, 64), BAD_CTX),
    # return ranges: bind may return 0..3, the getters must return 1
    _c("sa_bind4_ret3", BIND4, ret(3)),
    _c("sa_connect4_ret2", CONNECT4, ret(2), "should have been in [0, 1]"),
    _c("sa_recvmsg4_ret0", RECVMSG4, ret(0), "should have been in [1, 1]"),
    _c("sa_getpeername6_ret1", GETPEERNAME6, ret(1)),
    # helpers some hooks only
    _c("sa_bind_helper_connect4", CONNECT4,
       [mov(r0, 0), stx(8, r10, -16, r0), stx(8, r10, -8, r0), mov(r2, r10), add(r2, -16),
        mov(r3, 16), call(64), *ret(1)]),
    _c("sa_bind_helper_bind4", BIND4,
       [mov(r0, 0), stx(8, r10, -16, r0), stx(8, r10, -8, r0), mov(r2, r10), add(r2, -16),
        mov(r3, 16), call(64), *ret(1)], "program of this type cannot use helper bpf_bind#64"),
    _c("sa_get_retval_recvmsg4", RECVMSG4, [call(186), *ret(1)], "cannot use helper bpf_get_retval#186"),
    _c("sa_set_retval_connect4", CONNECT4, [mov(r1, 0), call(187), *ret(1)]),
    _c("sa_getsockopt_connect6", CONNECT6,
       [mov(r2, 6), mov(r3, 1), mov(r4, r10), add(r4, -8), mov(R(5), 8), call(57), *ret(1)]),
    _c("sa_netns_cookie_null", SENDMSG4, [mov(r1, 0), call(122), *ret(1)]),
    _c("sa_netns_cookie_ctx", SENDMSG4, [call(122), *ret(1)]),
    _c("sa_netns_cookie_scalar", SENDMSG4, [mov(r1, 7), call(122), *ret(1)], "R1 type=scalar expected=ctx"),
    # cgroup_sockopt: helper sets differ between the get and set hooks
    _c("sockopt_get_ret1", GETSOCKOPT, [*ret(1)], pt=SOCKOPT),
    _c("sockopt_get_setsockopt", GETSOCKOPT, [call(49), *ret(1)],
       "cannot use helper", pt=SOCKOPT),
    # sk_lookup: bpf_sk_assign() takes a socket or NULL
    _c("sk_lookup_assign_null", SK_LOOKUP_HOOK, [mov(r2, 0), mov(r3, 0), call(124), *ret(0)], pt=SK_LOOKUP),
    _c("sk_lookup_assign_scalar", SK_LOOKUP_HOOK, [mov(r2, 1), mov(r3, 0), call(124), *ret(0)],
       "R2 type=scalar expected=sock", pt=SK_LOOKUP),
    # bpf_strtoul(): the result pointer is an 8-byte aligned long the helper writes
    Case("strtoul_aligned_uninit", SYSCTL,
         [st(8, r10, -8, 0x31), mov(r1, r10), add(r1, -8), mov(r2, 2), mov(r3, 0), mov(r4, r10),
          add(r4, -16), call(106), ldx(8, r0, r10, -16), *ret(1)]),
    Case("strtoul_misaligned", SYSCTL,
         [st(8, r10, -8, 0x31), st(8, r10, -24, 0), st(8, r10, -16, 0), mov(r1, r10), add(r1, -8),
          mov(r2, 2), mov(r3, 0), mov(r4, r10), add(r4, -20), call(106), *ret(1)],
         "misaligned stack access off 0+-20+0 size 8"),
    Case("strtoul_res_past_stack", SYSCTL,
         [st(8, r10, -8, 0x31), mov(r1, r10), add(r1, -8), mov(r2, 2), mov(r3, 0), mov(r4, r10),
          add(r4, -4), call(106), *ret(1)], "invalid write to stack R4 off=-4 size=8"),
    # xdp_md.egress_ifindex exists only for devmap programs (expected_attach_type 33)
    Case("xdp_egress_ifindex_devmap", 6, _load(4, 20, 2), attach=33),
    Case("xdp_egress_ifindex_plain", 6, _load(4, 20, 2), BAD_CTX),
    # bpf_skb_change_head() moves the packet: earlier packet pointers are dead
    Case("tc_change_head", SCHED_CLS, [mov(r2, 14), mov(r3, 0), call(43), *ret(0)]),
    Case("tc_change_head_stale_pkt", SCHED_CLS,
         [ldx(4, R(7), r1, 76), mov(r2, 14), mov(r3, 0), call(43),
          ldx(1, r0, R(7), 0), *ret(0)], "R7 invalid mem access"),
]
