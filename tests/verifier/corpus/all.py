"""Every corpus case: the hand-written tables and a seeded generated set."""

import cases_audit
import cases_audit_rules
import cases_audit_state
import cases_basic
import cases_ctx_types
import cases_mem
import cases_regress
import cases_selftest_regress
import cases_sock_addr
import cases_strict_sock
import cases_unpriv
import cases_unpriv_loops
import gen


def hand_cases(include_slow: bool = False):
    out = (list(cases_basic.CASES) + list(cases_mem.CASES) + list(cases_regress.CASES)
           + list(cases_unpriv.CASES) + list(cases_unpriv_loops.CASES) + list(cases_audit.CASES)
           + list(cases_audit_rules.CASES) + list(cases_audit_state.CASES)
           + list(cases_selftest_regress.CASES) + list(cases_strict_sock.CASES)
           + list(cases_ctx_types.CASES) + list(cases_sock_addr.CASES))
    return [c for c in out if include_slow or "slow" not in c.tags]


def generated(n: int, seed: int = 1):
    return gen.corpus(n, seed)
