"""runtime.ExitStack, which spares the tools importing contextlib, behaves as contextlib's.

Each scenario runs against both classes and the observable outcomes are
compared: the order exits run in, what each exit saw, what propagates, and the
exception chain. The scenarios are the ones a tool's set-up meets: an object
that fails to open, a close that fails, and (for completeness) suppression.
"""

import contextlib

import pytest

from pybpf.tools.runtime import ExitStack


class Resource:
    """A context manager that logs its exit and can fail or suppress there."""

    def __init__(self, log, name, *, fail=None, suppress=False):
        self.log, self.name, self.fail, self.suppress = log, name, fail, suppress

    def __enter__(self):
        self.log.append(("enter", self.name))
        return self.name

    def __exit__(self, typ, value, tb):
        self.log.append(("exit", self.name, repr(value)))
        if self.fail is not None:
            raise self.fail
        return self.suppress


def chain(exc):
    """The exception and its implicit-chain ancestors, as reprs."""
    out = []
    while exc is not None and len(out) < 10:
        out.append(repr(exc))
        exc = exc.__context__
    return out


def outcome(stack_type, build, body_error=None):
    log = []
    try:
        with stack_type() as stack:
            results = build(stack, log)
            log.append(("results", [r if isinstance(r, str) else type(r).__name__ for r in results]))
            if body_error is not None:
                raise body_error
    except BaseException as exc:  # noqa: BLE001 - compared below
        return log, chain(exc)
    return log, None


SCENARIOS = {
    "all close newest first": lambda s, log: [
        s.enter_context(Resource(log, "map")), s.enter_context(Resource(log, "prog")),
        s.callback(log.append, ("callback", "reader")), s.enter_context(Resource(log, "link"))],
    "a close fails, older ones still run": lambda s, log: [
        s.enter_context(Resource(log, "map")),
        s.enter_context(Resource(log, "prog", fail=OSError(9, "EBADF"))),
        s.enter_context(Resource(log, "link"))],
    "two closes fail, both in the chain": lambda s, log: [
        s.enter_context(Resource(log, "map", fail=ValueError("map"))),
        s.enter_context(Resource(log, "prog", fail=OSError(9, "EBADF"))),
        s.enter_context(Resource(log, "link"))],
    "a failing callback": lambda s, log: [
        s.enter_context(Resource(log, "map")),
        s.callback(lambda: (_ for _ in ()).throw(RuntimeError("callback")))],
    "an exit suppresses": lambda s, log: [
        s.enter_context(Resource(log, "map", suppress=True)),
        s.enter_context(Resource(log, "prog"))],
    "an exit suppresses a newer exit's error": lambda s, log: [
        s.enter_context(Resource(log, "map", suppress=True)),
        s.enter_context(Resource(log, "prog", fail=OSError(9, "EBADF")))],
    "set-up fails after two opened": lambda s, log: [
        s.enter_context(Resource(log, "map")), s.enter_context(Resource(log, "prog")),
        s.enter_context(open_fails(log))],
    "not a context manager": lambda s, log: [
        s.enter_context(Resource(log, "map")), s.enter_context(object())],
}


def open_fails(log):
    log.append(("open", "link"))
    raise PermissionError(1, "Operation not permitted")


@pytest.mark.parametrize("body_error", [None, KeyboardInterrupt(), OSError(22, "EINVAL")],
                         ids=["no-error", "interrupt", "oserror"])
@pytest.mark.parametrize("name", SCENARIOS)
def test_same_outcome_as_contextlib(name, body_error):
    ours = outcome(ExitStack, SCENARIOS[name], body_error)
    theirs = outcome(contextlib.ExitStack, SCENARIOS[name], body_error)
    if name == "not a context manager":  # the message names the method contextlib looked up
        assert ours[1][0].startswith("TypeError(\"'builtins.object' object does not support")
        assert ours[0] == theirs[0] and ours[1][1:] == theirs[1][1:]
        return
    if name == "two closes fail, both in the chain" and body_error is None:
        # contextlib 3.11 drops the link from ValueError to the OSError it replaced when
        # no exception was in flight; nested with statements keep it, and so does ours.
        assert ours[1] == theirs[1] + ["OSError(9, 'EBADF')"] == nested_two_failing_closes()
        ours, theirs = (ours[0], ours[1][:1]), theirs
    assert ours == theirs
    assert ours[0][0][0] in ("enter", "open")  # the scenario did run


def nested_two_failing_closes():
    log = []
    try:
        with Resource(log, "map", fail=ValueError("map")):
            with Resource(log, "prog", fail=OSError(9, "EBADF")):
                with Resource(log, "link"):
                    pass
    except BaseException as exc:  # noqa: BLE001 - compared by the caller
        return chain(exc)


def test_errors_from_exits_are_not_swallowed():
    log = []
    with pytest.raises(OSError, match="EBADF") as info:
        with ExitStack() as stack:
            stack.enter_context(Resource(log, "map", fail=OSError(9, "EBADF")))
            raise ValueError("body")
    assert isinstance(info.value.__context__, ValueError)
    assert log[-1] == ("exit", "map", "ValueError('body')")


def test_callback_returns_the_function_and_passes_arguments():
    seen = []

    def note(*args, **kwargs):
        seen.append((args, kwargs))

    with ExitStack() as stack:
        assert stack.callback(note, 1) is note
        stack.callback(note, 2, x=3)
        assert seen == []
    assert seen == [((2,), {"x": 3}), ((1,), {})]
