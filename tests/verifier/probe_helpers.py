"""Regenerate pybpf/verifier/helper_names.py facts from the running kernel (root).

For each program type and helper id, loads ``call N; r0 = 0; exit`` and reads
the verifier's answer: "program of this type cannot use helper" or "invalid
func" means not allowed (per expected_attach_type too, for the BY_ATTACH pairs); the log's ``call bpf_name#N`` gives the helper's name.

    python tests/verifier/probe_helpers.py > /tmp/helpers.json
"""

import json
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus"))

import kernel  # noqa: E402
from dsl import call, exit_, mov, r0  # noqa: E402
from runner import kernel_bytes  # noqa: E402

TYPES = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 19, 21, 22, 23]
# (prog type, expected_attach_type) pairs whose get_func_proto() depends on the attach type,
# or that load only with one: cgroup_sock_addr's hooks, cgroup_sockopt get/set, sk_lookup.
BY_ATTACH = [(18, a) for a in (8, 9, 10, 11, 14, 15, 19, 20, 29, 30, 31, 32, 49, 50, 51, 52, 53)] + [
    (25, 21), (25, 22), (30, 36)]


def allowed_ids(pt: int, attach: int, names: dict[int, str]) -> list[int]:
    out = []
    for fid in range(1, 240):
        r = kernel.load(kernel_bytes([call(fid), mov(r0, 1), exit_()]), pt,
                        expected_attach_type=attach, log_level=1)
        m = re.search(r"call (\w+)#%d" % fid, r.log)
        if m and m.group(1) != "unknown":
            names[fid] = m.group(1)
        if r.error and ("cannot use helper" in r.error or "invalid func" in r.error):
            continue
        out.append(fid)
    return out


def main() -> None:
    names: dict[int, str] = {}
    allowed: dict[int, list[int]] = {}
    for pt in TYPES:
        allowed[pt] = allowed_ids(pt, 0, names)
    by_attach = {f"{pt}/{a}": allowed_ids(pt, a, names) for pt, a in BY_ATTACH}
    json.dump({"names": names, "allowed": allowed, "allowed_by_attach": by_attach}, sys.stdout)


if __name__ == "__main__":
    main()
