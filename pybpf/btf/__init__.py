"""BPF Type Format: read the kernel's types, write our own.

>>> from pybpf.btf import load_kernel_btf
>>> btf = load_kernel_btf()
>>> btf.member_offset("task_struct", "pid")        # doctest: +SKIP
(2472, 4)
>>> btf.struct("sock").member("__sk_common.skc_daddr").offset  # doctest: +SKIP
0
>>> btf.func_id("tcp_v4_connect")                   # doctest: +SKIP

Parsing is lazy (see :mod:`pybpf.btf.spec`): opening vmlinux records where
each type starts, and only the types a caller touches are decoded.
"""

from pybpf._lazy import lazy_exports
from .errors import BTFError, BTFFormatError, MemberNotFoundError, TypeNotFoundError
from .kernel import SYSFS_BTF, load_kernel_btf, load_module_btf, module_btf_names
from .kinds import FuncLinkage, IntEncoding, Kind, VarLinkage
from .spec import Spec
from .types import (Array, Composite, Const, Datasec, DeclTag, Enum, Enum64, EnumValue,
                    Float, Func, FuncProto, Fwd, Int, Member, MemberLocation, Param, Pointer,
                    Qualifier, Restrict, Struct, Type, Typedef, TypeTag, Union, Var, VarSecinfo,
                    Void, Volatile)

_LAZY = {"Builder": ".encode", "load_btf": ".load", "BTFLoadError": ".load"}


# Encoder and loader load on first use: most callers only read BTF, and
# start-up time is what this package is tuned for.
__getattr__, __dir__ = lazy_exports(__name__, globals(), _LAZY)


__all__ = [
    "Builder", "Spec", "load_btf", "BTFLoadError", "load_kernel_btf", "load_module_btf", "module_btf_names", "SYSFS_BTF",
    "BTFError", "BTFFormatError", "TypeNotFoundError", "MemberNotFoundError",
    "Kind", "IntEncoding", "FuncLinkage", "VarLinkage",
    "Type", "Void", "Int", "Pointer", "Array", "Member", "Composite", "Struct", "Union",
    "EnumValue", "Enum", "Enum64", "Fwd", "Qualifier", "Typedef", "Volatile", "Const",
    "Restrict", "TypeTag", "Func", "Param", "FuncProto", "Var", "VarSecinfo", "Datasec",
    "Float", "DeclTag", "MemberLocation",
]
