"""perf_event_open(2) attributes, ioctls and dynamic PMU discovery.

Tracepoints, kprobes and uprobes are all perf events underneath: a BPF
program is attached to an event fd (``PERF_EVENT_IOC_SET_BPF`` or a
``BPF_LINK_CREATE`` perf link), and perf event arrays read samples from
per-CPU rings. This module holds only the raw layout and constants
(include/uapi/linux/perf_event.h); objects live in ``pybpf.link`` and
``pybpf.perf``.
"""

from __future__ import annotations

import ctypes
import errno
import os

from pybpf._intenum import IntEnum

from .bpf import ioctl, perf_event_open
from .errors import NotSupported
from .fd import FD

__all__ = [
    "PerfType", "PerfSwId", "SampleType", "RecordType", "PerfEventAttr", "PERF_ATTR_SIZE",
    "PERF_EVENT_IOC_ENABLE", "PERF_EVENT_IOC_DISABLE", "PERF_EVENT_IOC_SET_BPF",
    "PERF_FLAG_FD_CLOEXEC", "ATTR_DISABLED", "ATTR_WATERMARK", "ATTR_SAMPLE_ID_ALL",
    "open_event", "ioctl_enable", "ioctl_disable", "ioctl_set_bpf",
    "pmu_type", "pmu_retprobe_bit", "PerfMmapPage",
]

EVENT_SOURCE = "/sys/bus/event_source/devices"


class PerfType(IntEnum):
    """perf_type_id: the ``type`` field of perf_event_attr (dynamic PMUs have their own)."""

    HARDWARE = 0
    SOFTWARE = 1
    TRACEPOINT = 2
    HW_CACHE = 3
    RAW = 4
    BREAKPOINT = 5


class PerfSwId(IntEnum):
    """perf_sw_ids: ``config`` for PERF_TYPE_SOFTWARE."""

    CPU_CLOCK = 0
    TASK_CLOCK = 1
    PAGE_FAULTS = 2
    CONTEXT_SWITCHES = 3
    CPU_MIGRATIONS = 4
    PAGE_FAULTS_MIN = 5
    PAGE_FAULTS_MAJ = 6
    ALIGNMENT_FAULTS = 7
    EMULATION_FAULTS = 8
    DUMMY = 9
    BPF_OUTPUT = 10


class SampleType:
    """perf_event_sample_format bits (``sample_type``)."""

    IP = 1 << 0
    TID = 1 << 1
    TIME = 1 << 2
    ADDR = 1 << 3
    READ = 1 << 4
    CALLCHAIN = 1 << 5
    ID = 1 << 6
    CPU = 1 << 7
    PERIOD = 1 << 8
    STREAM_ID = 1 << 9
    RAW = 1 << 10


class RecordType(IntEnum):
    """perf_event_type: ``perf_event_header.type`` of records in the mmap ring."""

    MMAP = 1
    LOST = 2
    COMM = 3
    EXIT = 4
    THROTTLE = 5
    UNTHROTTLE = 6
    FORK = 7
    READ = 8
    SAMPLE = 9


# Bits of the flags word (the C bitfield after read_format).
ATTR_DISABLED = 1 << 0
ATTR_INHERIT = 1 << 1
ATTR_EXCLUDE_USER = 1 << 4
ATTR_EXCLUDE_KERNEL = 1 << 5
ATTR_WATERMARK = 1 << 14
ATTR_SAMPLE_ID_ALL = 1 << 18

PERF_FLAG_FD_NO_GROUP = 1 << 0
PERF_FLAG_FD_OUTPUT = 1 << 1
PERF_FLAG_PID_CGROUP = 1 << 2
PERF_FLAG_FD_CLOEXEC = 1 << 3

# _IO('$', 0), _IO('$', 1), _IOW('$', 8, __u32)
PERF_EVENT_IOC_ENABLE = 0x2400
PERF_EVENT_IOC_DISABLE = 0x2401
PERF_EVENT_IOC_SET_BPF = 0x40042408


class PerfEventAttr(ctypes.Structure):
    """struct perf_event_attr (PERF_ATTR_SIZE_VER8, 136 bytes).

    The unions are flattened to their first name; the aliases used for
    probes are properties: ``kprobe_func``/``uprobe_path`` (config1, a
    pointer to a C string) and ``probe_offset``/``kprobe_addr`` (config2).
    """

    _fields_ = [
        ("type", ctypes.c_uint32),
        ("size", ctypes.c_uint32),
        ("config", ctypes.c_uint64),
        ("sample_period", ctypes.c_uint64),  # union with sample_freq
        ("sample_type", ctypes.c_uint64),
        ("read_format", ctypes.c_uint64),
        ("flags", ctypes.c_uint64),
        ("wakeup_events", ctypes.c_uint32),  # union with wakeup_watermark
        ("bp_type", ctypes.c_uint32),
        ("config1", ctypes.c_uint64),
        ("config2", ctypes.c_uint64),
        ("branch_sample_type", ctypes.c_uint64),
        ("sample_regs_user", ctypes.c_uint64),
        ("sample_stack_user", ctypes.c_uint32),
        ("clockid", ctypes.c_int32),
        ("sample_regs_intr", ctypes.c_uint64),
        ("aux_watermark", ctypes.c_uint32),
        ("sample_max_stack", ctypes.c_uint16),
        ("_reserved_2", ctypes.c_uint16),
        ("aux_sample_size", ctypes.c_uint32),
        ("_reserved_3", ctypes.c_uint32),
        ("sig_data", ctypes.c_uint64),
        ("config3", ctypes.c_uint64),
    ]

    @property
    def wakeup_watermark(self) -> int:
        return self.wakeup_events

    @wakeup_watermark.setter
    def wakeup_watermark(self, value: int) -> None:
        self.wakeup_events = value


PERF_ATTR_SIZE = ctypes.sizeof(PerfEventAttr)
assert PERF_ATTR_SIZE == 136


class PerfMmapPage(ctypes.Structure):
    """The head of struct perf_event_mmap_page we use: data_head/tail and the data area bounds.

    The kernel places data_head at byte 1024 (after a reserved area), so the
    layout is given by explicit padding rather than every field.
    """

    _fields_ = [
        ("version", ctypes.c_uint32),
        ("compat_version", ctypes.c_uint32),
        ("_pad", ctypes.c_uint8 * (1024 - 8)),
        ("data_head", ctypes.c_uint64),
        ("data_tail", ctypes.c_uint64),
        ("data_offset", ctypes.c_uint64),
        ("data_size", ctypes.c_uint64),
    ]


DATA_HEAD_OFFSET = PerfMmapPage.data_head.offset
DATA_TAIL_OFFSET = PerfMmapPage.data_tail.offset


def open_event(attr: PerfEventAttr, *, pid: int = -1, cpu: int = 0, group_fd: int = -1,
               context: str = "") -> FD:
    """perf_event_open with PERF_FLAG_FD_CLOEXEC; returns an owned :class:`FD`."""
    attr.size = PERF_ATTR_SIZE
    return FD(perf_event_open(attr, pid, cpu, group_fd, PERF_FLAG_FD_CLOEXEC, context=context))


def ioctl_enable(fd: int) -> None:
    ioctl(fd, PERF_EVENT_IOC_ENABLE, 0, "PERF_EVENT_IOC_ENABLE")


def ioctl_disable(fd: int) -> None:
    ioctl(fd, PERF_EVENT_IOC_DISABLE, 0, "PERF_EVENT_IOC_DISABLE")


def ioctl_set_bpf(fd: int, prog_fd: int) -> None:
    """Attach a BPF program to a perf event (the pre-5.15 way; kept for old kernels)."""
    ioctl(fd, PERF_EVENT_IOC_SET_BPF, prog_fd, "PERF_EVENT_IOC_SET_BPF")


def pmu_type(name: str) -> int:
    """The dynamic PMU type of ``kprobe``/``uprobe`` from sysfs.

    Raises :class:`NotSupported` when the PMU is absent (kernel < 4.17, or
    built without CONFIG_KPROBE_EVENTS / CONFIG_UPROBE_EVENTS).
    """
    path = os.path.join(EVENT_SOURCE, name, "type")
    try:
        with open(path) as f:
            return int(f.read().strip())
    except FileNotFoundError:
        raise NotSupported(errno.EOPNOTSUPP, "perf_event_open",
                           f"no {name} PMU ({path} does not exist)") from None


def pmu_retprobe_bit(name: str) -> int:
    """The config bit that turns a ``kprobe``/``uprobe`` PMU event into a return probe.

    sysfs says it as ``config:0`` in ``format/retprobe``.
    """
    path = os.path.join(EVENT_SOURCE, name, "format", "retprobe")
    try:
        with open(path) as f:
            text = f.read().strip()
    except FileNotFoundError:
        raise NotSupported(errno.EOPNOTSUPP, "perf_event_open",
                           f"the {name} PMU has no retprobe format ({path} does not exist)") from None
    field, _, bits = text.partition(":")
    if field != "config" or not bits:
        raise ValueError(f"unexpected retprobe format {text!r} in {path}")
    return int(bits.split("-")[0])
