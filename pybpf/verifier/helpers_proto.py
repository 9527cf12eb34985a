"""Helper function prototypes: argument kinds and return types, by helper id.

Facts from the kernel's ``struct bpf_func_proto`` definitions (kernel/bpf/helpers.c,
net/core/filter.c, kernel/trace/bpf_trace.c). Argument kinds are short strings:

``any``       ARG_ANYTHING                 ``map``       ARG_CONST_MAP_PTR
``key``       ARG_PTR_TO_MAP_KEY           ``value``     ARG_PTR_TO_MAP_VALUE
``uvalue``    ARG_PTR_TO_MAP_VALUE|UNINIT  ``mem``       ARG_PTR_TO_MEM|MEM_RDONLY
``mem?``      ARG_PTR_TO_MEM|RDONLY|NULL   ``umem``      ARG_PTR_TO_UNINIT_MEM (helper writes)
``size``      ARG_CONST_SIZE               ``size0``     ARG_CONST_SIZE_OR_ZERO
``alloc0``    ARG_CONST_ALLOC_SIZE_OR_ZERO ``ctx``       ARG_PTR_TO_CTX
``sk_rel``    ARG_PTR_TO_BTF_ID_SOCK_COMMON|OBJ_RELEASE
``sockc``     ARG_PTR_TO_SOCK_COMMON       ``rb_rel``    ARG_PTR_TO_RINGBUF_MEM|OBJ_RELEASE
``ctx?``      ARG_PTR_TO_CTX_OR_NULL       ``sock?``     ARG_PTR_TO_SOCKET_OR_NULL
``long``      ARG_PTR_TO_FIXED_SIZE_MEM|MEM_UNINIT|MEM_WRITE|MEM_ALIGNED, 8 bytes (a ``long *``)


Return kinds: ``int``, ``void``, ``map_value`` (never NULL), ``map_value?``, ``sock?``, ``sock_common?``,
``tcp_sock?``, ``ringbuf_mem?`` (``?`` = may be NULL, needs a check).
"""

from __future__ import annotations

from typing import NamedTuple

__all__ = ["Proto", "PROTOS", "PROTOS_BY_TYPE", "ACQUIRE", "PKT_ACCESS", "PTR_CAST", "helper_name"]


class Proto(NamedTuple):
    name: str
    ret: str
    args: tuple[str, ...]


_P = Proto
PROTOS: dict[int, Proto] = {
    1: _P("map_lookup_elem", "map_value?", ("map", "key")),
    2: _P("map_update_elem", "int", ("map", "key", "value", "any")),
    3: _P("map_delete_elem", "int", ("map", "key")),
    4: _P("probe_read", "int", ("umem", "size0", "any")),
    5: _P("ktime_get_ns", "int", ()),
    6: _P("trace_printk", "int", ("mem", "size")),  # variadic: r3-r5 are not checked
    7: _P("get_prandom_u32", "int", ()),
    8: _P("get_smp_processor_id", "int", ()),
    9: _P("skb_store_bytes", "int", ("ctx", "any", "mem", "size", "any")),
    10: _P("l3_csum_replace", "int", ("ctx", "any", "any", "any", "any")),
    11: _P("l4_csum_replace", "int", ("ctx", "any", "any", "any", "any")),
    12: _P("tail_call", "void", ("ctx", "map", "any")),
    13: _P("clone_redirect", "int", ("ctx", "any", "any")),
    14: _P("get_current_pid_tgid", "int", ()),
    15: _P("get_current_uid_gid", "int", ()),
    16: _P("get_current_comm", "int", ("umem", "size")),
    17: _P("get_cgroup_classid", "int", ("ctx",)),
    18: _P("skb_vlan_push", "int", ("ctx", "any", "any")),
    19: _P("skb_vlan_pop", "int", ("ctx",)),
    22: _P("perf_event_read", "int", ("map", "any")),
    23: _P("redirect", "int", ("any", "any")),
    25: _P("perf_event_output", "int", ("ctx", "map", "any", "mem", "size0")),
    26: _P("skb_load_bytes", "int", ("ctx", "any", "umem", "size")),
    27: _P("get_stackid", "int", ("ctx", "map", "any")),
    28: _P("csum_diff", "int", ("mem?", "size0", "mem?", "size0", "any")),
    34: _P("get_hash_recalc", "int", ("ctx",)),
    35: _P("get_current_task", "int", ()),
    39: _P("skb_pull_data", "int", ("ctx", "any")),
    40: _P("csum_update", "int", ("ctx", "any")),
    41: _P("set_hash_invalid", "void", ("ctx",)),
    42: _P("get_numa_node_id", "int", ()),
    43: _P("skb_change_head", "int", ("ctx", "any", "any")),
    44: _P("xdp_adjust_head", "int", ("ctx", "any")),
    45: _P("probe_read_str", "int", ("umem", "size0", "any")),
    46: _P("get_socket_cookie", "int", ("ctx",)),
    47: _P("get_socket_uid", "int", ("ctx",)),
    49: _P("setsockopt", "int", ("ctx", "any", "any", "mem", "size")),
    51: _P("redirect_map", "int", ("map", "any", "any")),
    54: _P("xdp_adjust_meta", "int", ("ctx", "any")),
    57: _P("getsockopt", "int", ("ctx", "any", "any", "umem", "size")),
    65: _P("xdp_adjust_tail", "int", ("ctx", "any")),
    64: _P("bind", "int", ("ctx", "mem", "size")),
    67: _P("get_stack", "int", ("ctx", "umem", "size0", "any")),
    68: _P("skb_load_bytes_relative", "int", ("ctx", "any", "umem", "size", "any")),
    69: _P("fib_lookup", "int", ("ctx", "mem", "size", "any")),
    80: _P("get_current_cgroup_id", "int", ()),
    81: _P("get_local_storage", "map_value", ("map", "any")),
    82: _P("sk_select_reuseport", "int", ("ctx", "map", "key", "any")),
    84: _P("sk_lookup_tcp", "sock?", ("ctx", "mem", "size", "any", "any")),
    85: _P("sk_lookup_udp", "sock?", ("ctx", "mem", "size", "any", "any")),
    86: _P("sk_release", "int", ("sk_rel",)),
    87: _P("map_push_elem", "int", ("map", "value", "any")),
    88: _P("map_pop_elem", "int", ("map", "uvalue")),
    89: _P("map_peek_elem", "int", ("map", "uvalue")),
    95: _P("sk_fullsock", "sock?", ("sockc",)),
    96: _P("tcp_sock", "tcp_sock?", ("sockc",)),
    98: _P("get_listener_sock", "sock?", ("sockc",)),
    99: _P("skc_lookup_tcp", "sock_common?", ("ctx", "mem", "size", "any", "any")),
    106: _P("strtoul", "int", ("mem", "size", "any", "long")),
    112: _P("probe_read_user", "int", ("umem", "size0", "any")),
    113: _P("probe_read_kernel", "int", ("umem", "size0", "any")),
    114: _P("probe_read_user_str", "int", ("umem", "size0", "any")),
    115: _P("probe_read_kernel_str", "int", ("umem", "size0", "any")),
    118: _P("jiffies64", "int", ()),
    122: _P("get_netns_cookie", "int", ("ctx?",)),
    124: _P("sk_assign", "int", ("ctx", "sockc", "any")),
    125: _P("ktime_get_boot_ns", "int", ()),
    130: _P("ringbuf_output", "int", ("map", "mem", "size0", "any")),
    131: _P("ringbuf_reserve", "ringbuf_mem?", ("map", "alloc0", "any")),
    132: _P("ringbuf_submit", "void", ("rb_rel", "any")),
    133: _P("ringbuf_discard", "void", ("rb_rel", "any")),
    134: _P("ringbuf_query", "int", ("map", "any")),
    160: _P("ktime_get_coarse_ns", "int", ()),
    186: _P("get_retval", "int", ()),
    187: _P("set_retval", "int", ("any",)),
    188: _P("xdp_get_buff_len", "int", ("ctx",)),
    189: _P("xdp_load_bytes", "int", ("ctx", "any", "umem", "size")),
    190: _P("xdp_store_bytes", "int", ("ctx", "any", "mem", "size")),
    208: _P("ktime_get_tai_ns", "int", ()),
}

# Prototypes that differ by program type (the type's get_func_proto() returns another one).
PROTOS_BY_TYPE: dict[tuple[int, int], Proto] = {
    # sk_lookup's bpf_sk_assign() takes a socket or NULL (to clear a previous selection)
    (30, 124): _P("sk_assign", "int", ("ctx", "sock?", "any")),
}

# Helpers that may be given packet pointers (bpf_func_proto.pkt_access): a packet pointer
# passed to any other helper is refused, since the helper could not be trusted to stay in
# the checked range if the packet moves under it.
PKT_ACCESS = {1, 2, 3, 28, 84, 85, 87, 88, 89, 99, 100, 110, 195}
# Helpers whose returned pointer holds a reference that must be released.
ACQUIRE = {84, 85, 99, 131}
# is_ptr_cast_function(): the result is the argument seen as another type, so it carries the
# argument's reference (released together) rather than a new one.
PTR_CAST = {95, 96}
# Helpers whose return value is bounded by their size argument (do_refine_retval_range()).
RET_BOUNDED_BY_SIZE = {45, 67, 114, 115}
# Map types each map-specific helper accepts (check_map_func_compatibility()).
MAP_TYPE_RINGBUF, MAP_TYPE_PROG_ARRAY, MAP_TYPE_PERF_EVENT_ARRAY = 27, 3, 4
MAP_TYPE_QUEUE, MAP_TYPE_STACK, MAP_TYPE_STACK_TRACE = 22, 23, 7
MAP_TYPE_ARRAY, MAP_TYPE_PERCPU_ARRAY = 2, 6
MAP_TYPES_CGROUP_STORAGE = (19, 21)  # cgroup_storage, percpu_cgroup_storage


def helper_name(func_id: int) -> str:
    """``bpf_<name>`` as the kernel's messages spell it (id 0, ``unspec``, has no name)."""
    from pybpf.asm.helpers import HELPER_NAMES
    name = HELPER_NAMES.get(func_id) if func_id else None
    return f"bpf_{name}" if name else "unknown"
