"""Every failing point is a row: whatever it raises, on every executor, and the sweep goes on."""

import pytest

from nbflow import sweep


class BrokenStr(Exception):
    def __str__(self):
        raise RuntimeError("__str__ itself fails")


class TwoArgs(Exception):
    """An exception pickle cannot rebuild: its __init__ needs two arguments, args holds one."""

    def __init__(self, code, detail):
        super().__init__(f"code {code}: {detail}")
        self.code, self.detail = code, detail


class Custom(BaseException):
    pass


def fail_at_2(kind, x):
    if x == 2:
        if kind == "broken_str":
            raise BrokenStr()
        if kind == "system_exit":
            raise SystemExit(3)
        if kind == "two_args":
            raise TwoArgs(7, "bad point")
        if kind == "base_exception":
            raise Custom("a BaseException subclass")
    return {"y": x * 10}


@pytest.mark.parametrize("kind", ["broken_str", "system_exit", "two_args", "base_exception"])
def test_failure_rows_any_exception_becomes_an_error_row(executor_name, kind):
    """__str__ that raises, SystemExit, an exception pickle cannot rebuild, a BaseException: each one row."""
    df = sweep(fail_at_2, {"kind": [kind], "x": [1, 2, 3]}, executor=executor_name, progress=False)
    assert df["status"].tolist() == ["ok", "error", "ok"]
    assert df["y"].tolist()[0] == 10 and df["y"].tolist()[2] == 30
    error = df["error"].iloc[1]
    expected_type = {
        "broken_str": "BrokenStr",
        "system_exit": "SystemExit",
        "two_args": "TwoArgs",
        "base_exception": "Custom",
    }[kind]
    assert error.startswith(f"{expected_type}:"), error
    if kind == "two_args":
        assert "code 7: bad point" in error
    if kind == "broken_str":
        assert "unprintable" in error
    if kind == "system_exit":
        assert "3" in error


def test_failure_rows_keep_the_full_traceback(executor_name):
    """The error column is one line; the whole traceback of the failed point is kept with the frame."""
    df = sweep(fail_at_2, {"kind": ["two_args"], "x": [1, 2]}, executor=executor_name, progress=False)
    assert "\n" not in df["error"].iloc[1]
    log = df.nbflow.log(1)
    assert "Traceback (most recent call last)" in log and "fail_at_2" in log and "TwoArgs" in log
    assert df.nbflow.log(0) == ""


def test_failure_rows_multiline_message_is_one_line_in_the_error_column():
    """An exception whose message spans lines keeps the first line in the error column."""

    def f(x):
        raise ValueError("first line\nsecond line")

    df = sweep(f, {"x": [1]}, progress=False)
    assert df["error"].iloc[0] == "ValueError: first line ..."
    assert "second line" in df.nbflow.log(0)
