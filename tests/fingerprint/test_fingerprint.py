"""Fingerprints of code and data: what changes them, what must not, and stability across processes.

Notebook cells are simulated by ``exec`` into a namespace whose ``__name__`` is
``"__main__"``, which is what IPython gives the functions a cell defines.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import subprocess
import sys
import textwrap
import threading
import types

import pytest

from nbflow import GraphBuilder, RunnableGraph, State, StateList, expr, when
from nbflow.fingerprint import code_fingerprint, value_fingerprint


def cell(*sources: str, namespace: dict | None = None) -> dict:
    """Run ``sources`` as notebook cells in ``namespace`` (a fresh ``__main__`` one by default)."""
    namespace = {"__name__": "__main__"} if namespace is None else namespace
    for source in sources:
        exec(textwrap.dedent(source), namespace)
    return namespace


def fp_of(*sources: str, name: str = "f", **kwargs) -> str:
    """The code fingerprint of ``name`` after running ``sources`` as cells."""
    return code_fingerprint(cell(*sources)[name], **kwargs)


SQUARE = """
def f(x, k=2):
    return x ** k + 1
"""


# -- code: what must not change it -----------------------------------------------------------


def test_code_fingerprint_same_source_same_digest():
    """The same source run in two cells (two function objects) gives one fingerprint."""
    first, second = cell(SQUARE)["f"], cell(SQUARE)["f"]
    assert first is not second
    assert code_fingerprint(first) == code_fingerprint(second) == code_fingerprint(first)


def test_code_fingerprint_line_shift_same():
    """Blank lines above a function, which move it down the file, leave its fingerprint alone."""
    assert fp_of(SQUARE) == fp_of("\n\n\n\n" + SQUARE)


def test_code_fingerprint_future_flags_ignored():
    """``from __future__ import annotations`` in the compiling code does not count."""
    plain = compile(SQUARE, "<cell>", "exec", dont_inherit=True)
    future = compile("from __future__ import annotations\n" + SQUARE, "<cell>", "exec", dont_inherit=True)
    a, b = {"__name__": "__main__"}, {"__name__": "__main__"}
    exec(plain, a)
    exec(future, b)
    assert a["f"].__code__.co_flags != b["f"].__code__.co_flags
    assert code_fingerprint(a["f"]) == code_fingerprint(b["f"])


def test_code_fingerprint_filename_same():
    """Compiling under another file name (another cell id) leaves the fingerprint alone."""
    a, b = {"__name__": "__main__"}, {"__name__": "__main__"}
    exec(compile(SQUARE, "<ipython-input-1>", "exec"), a)
    exec(compile(SQUARE, "/tmp/elsewhere.py", "exec"), b)
    assert code_fingerprint(a["f"]) == code_fingerprint(b["f"])


def test_code_fingerprint_docstring_and_comments_ignored():
    """Editing a docstring or a comment does not invalidate cached results."""
    documented = '''
    def f(x, k=2):
        """Square, plus one."""
        # why: a comment
        return x ** k + 1
    '''
    reworded = documented.replace("Square, plus one.", "x to the k, plus one.").replace("a comment", "!")
    assert fp_of(documented) == fp_of(reworded)


def test_code_fingerprint_specialized_function_same():
    """Calling a function often (so the interpreter specializes its bytecode) leaves it alone."""
    f = cell(SQUARE)["f"]
    before = code_fingerprint(f)
    for i in range(5_000):
        f(i)
    assert code_fingerprint(f) == before


# -- code: what must change it ---------------------------------------------------------------


@pytest.mark.parametrize(
    "edited",
    [
        SQUARE.replace("x ** k + 1", "x ** k - 1"),
        SQUARE.replace("+ 1", "+ 2"),
        SQUARE.replace("k=2", "k=3"),
        SQUARE.replace("x, k=2", "x, *, k=2"),
        SQUARE.replace("return", "y = 0\n    return"),
    ],
    ids=["body", "constant", "default", "kw-only", "statement"],
)
def test_code_fingerprint_edit_differs(edited):
    """Changing the body, a constant, a default or the signature changes the fingerprint."""
    assert fp_of(SQUARE) != fp_of(edited)


def test_code_fingerprint_kwonly_default_change_differs():
    """A keyword-only default (``__kwdefaults__``) counts."""
    assert fp_of("def f(x, *, k=2): return x * k") != fp_of("def f(x, *, k=3): return x * k")


def test_code_fingerprint_nested_lambda_change_differs():
    """Constants inside a lambda or a comprehension count (nested code objects are hashed)."""
    base = "def f(xs): return sorted(xs, key=lambda x: x % 3)"
    assert fp_of(base) != fp_of(base.replace("% 3", "% 4"))
    comprehension = "def f(xs): return [x * 2 for x in xs]"
    assert fp_of(comprehension) != fp_of(comprehension.replace("* 2", "* 5"))


def test_code_fingerprint_helper_body_change_differs():
    """Editing a notebook helper a function calls changes the caller's fingerprint."""
    helper_v1 = "def helper(x):\n    return x + 1\n"
    helper_v2 = "def helper(x):\n    return x + 2\n"
    caller = "def f(x):\n    return helper(x) * 2\n"
    assert fp_of(helper_v1, caller) != fp_of(helper_v2, caller)
    assert fp_of(helper_v1, caller) == fp_of(helper_v1, caller)


def test_code_fingerprint_rerun_helper_cell_differs():
    """Re-running an edited helper cell in the same kernel changes the caller's fingerprint."""
    namespace = cell("def helper(x):\n    return x + 1\n", "def f(x):\n    return helper(x)\n")
    before = code_fingerprint(namespace["f"])
    cell("def helper(x):\n    return x - 1\n", namespace=namespace)
    assert code_fingerprint(namespace["f"]) != before


def test_code_fingerprint_helper_of_helper_change_differs():
    """Helpers are followed transitively, through nested lambdas too."""
    leaf = "def leaf(x):\n    return x + {n}\n"
    middle = "def middle(xs):\n    return list(map(lambda x: leaf(x), xs))\n"
    top = "def f(xs):\n    return middle(xs)\n"
    assert fp_of(leaf.format(n=1), middle, top) != fp_of(leaf.format(n=2), middle, top)


def test_code_fingerprint_cached_helper_change_differs():
    """A helper wrapped in ``functools.lru_cache`` is hashed through to the function it wraps."""
    helper = "import functools\n@functools.lru_cache\ndef helper(x):\n    return x + {n}\n"
    caller = "def f(x):\n    return helper(x)\n"
    assert fp_of(helper.format(n=1), caller) != fp_of(helper.format(n=2), caller)


def test_code_fingerprint_global_constant_change_differs():
    """A notebook constant the function reads (``SCALE = 3``) counts by value."""
    body = "def f(x):\n    return x * SCALE\n"
    assert fp_of("SCALE = 2", body) != fp_of("SCALE = 3", body)


def test_code_fingerprint_unfingerprintable_global_by_type():
    """A global that can be neither hashed nor pickled (a lock) counts by type and does not raise."""
    namespace = cell("def f(x):\n    with LOCK:\n        return x\n")
    namespace["LOCK"] = threading.Lock()
    first = code_fingerprint(namespace["f"])
    namespace["LOCK"] = threading.Lock()
    assert code_fingerprint(namespace["f"]) == first


def test_code_fingerprint_closure_values_differ():
    """Closures over different values differ; over equal values, they agree."""
    make = cell("def make(k):\n    def f(x):\n        return x * k\n    return f\n")["make"]
    assert code_fingerprint(make(2)) != code_fingerprint(make(3))
    assert code_fingerprint(make([1, 2])) == code_fingerprint(make([1, 2]))


def test_code_fingerprint_closure_unpicklable_raises():
    """A closure over something unpicklable raises a TypeError naming the type, variable and fix."""
    make = cell("def make(lock):\n    def f(x):\n        with lock:\n            return x\n    return f\n")[
        "make"
    ]
    with pytest.raises(TypeError) as info:
        code_fingerprint(make(threading.Lock()))
    message = str(info.value)
    assert "_thread.lock" in message
    assert "closure variable 'lock'" in message
    assert "inside the action" in message


def test_code_fingerprint_recursive_terminates():
    """A recursive function terminates, and an edit to it is still seen."""
    fact = "def f(n):\n    return 1 if n < 2 else n * f(n - 1)\n"
    assert fp_of(fact) == fp_of(fact)
    assert fp_of(fact) != fp_of(fact.replace("n < 2", "n < 3"))


def test_code_fingerprint_mutual_recursion_terminates():
    """Mutually recursive functions terminate, and an edit to either one is seen from the other."""
    even = "def f(n):\n    return True if n == 0 else odd(n - 1)\n"
    odd = "def odd(n):\n    return False if n == 0 else f(n - 1)\n"
    assert fp_of(even, odd) == fp_of(even, odd)
    assert fp_of(even, odd) != fp_of(even, odd.replace("False", "None"))


def test_code_fingerprint_shared_helper_change_differs():
    """A helper reached along two paths (a diamond) is hashed once, and an edit to it is seen."""
    helper = "def helper(x):\n    return x + {n}\n"
    rest = "def a(x):\n    return helper(x)\ndef b(x):\n    return helper(x)\ndef f(x):\n    return a(x) + b(x)\n"
    assert fp_of(helper.format(n=1), rest) == fp_of(helper.format(n=1), rest)
    assert fp_of(helper.format(n=1), rest) != fp_of(helper.format(n=2), rest)


@pytest.fixture
def fakelib(monkeypatch):
    """An importable library module ``fakelib`` with a function ``op`` and a ``__version__``."""
    module = types.ModuleType("fakelib")
    module.__version__ = "1.0"
    monkeypatch.setitem(sys.modules, "fakelib", module)

    def define(body: str) -> None:
        namespace = {"__name__": "fakelib"}
        exec(f"def op(x):\n    return {body}\n", namespace)
        module.op = namespace["op"]

    define("x + 1")
    return module, define


def test_code_fingerprint_library_function_by_name_and_version(fakelib):
    """A library function counts by name and version: its body does not, a version bump does."""
    module, define = fakelib
    user = "from fakelib import op\ndef f(x):\n    return op(x)\n"
    before = fp_of(user)
    define("x + 2")
    assert fp_of(user) == before
    module.__version__ = "1.1"
    assert fp_of(user) != before


def test_code_fingerprint_follow_hashes_library_code(fakelib):
    """``follow=`` names modules whose functions are hashed by code, for helpers edited alongside."""
    _, define = fakelib
    user = "from fakelib import op\ndef f(x):\n    return op(x)\n"
    before = fp_of(user, follow=["fakelib"])
    define("x + 2")
    assert fp_of(user, follow=["fakelib"]) != before


def test_code_fingerprint_library_module_attribute_changes_differ():
    """Calling ``math.floor`` instead of ``math.ceil`` differs (attribute names are hashed)."""
    assert fp_of("import math\ndef f(x): return math.floor(x)") != fp_of(
        "import math\ndef f(x): return math.ceil(x)"
    )


def test_code_fingerprint_partial_and_method():
    """A ``functools.partial`` counts its arguments; a bound method its function."""
    f = cell(SQUARE)["f"]
    assert code_fingerprint(functools.partial(f, k=2)) != code_fingerprint(functools.partial(f, k=3))

    class Scaler:
        def scale(self, x):
            return x * 2

    assert code_fingerprint(Scaler().scale) == code_fingerprint(Scaler().scale)


def test_code_fingerprint_rejects_data():
    """Data given to code_fingerprint raises a TypeError pointing at value_fingerprint."""
    with pytest.raises(TypeError, match=r"got builtins\.dict\. For data, use value_fingerprint"):
        code_fingerprint({"a": 1})


# -- code: actions and graphs ----------------------------------------------------------------

ACTION_CELL = """
from nbflow import action

@action(reads=["x"], writes=["y"])
def f(state, k=2):
    return state.update(y=helper(state["x"]) * k)
"""


def test_code_fingerprint_function_action_bind_differs():
    """A FunctionAction's bound inputs count: different ``.bind()`` values differ."""
    act = cell("def helper(x):\n    return x\n", ACTION_CELL)["f"]
    assert code_fingerprint(act.bind(k=2)) != code_fingerprint(act.bind(k=3))
    assert code_fingerprint(act.bind(k=2)) == code_fingerprint(act.bind(k=2))
    assert code_fingerprint(act) != code_fingerprint(act.fn)


def test_code_fingerprint_function_action_helper_and_keys_differ():
    """A FunctionAction counts its helpers' code and its declared reads and writes."""
    v1 = cell("def helper(x):\n    return x\n", ACTION_CELL)["f"]
    v2 = cell("def helper(x):\n    return -x\n", ACTION_CELL)["f"]
    assert code_fingerprint(v1) != code_fingerprint(v2)
    rekeyed = cell("def helper(x):\n    return x\n", ACTION_CELL.replace('writes=["y"]', 'writes=["z"]'))["f"]
    assert code_fingerprint(v1) != code_fingerprint(rekeyed)


def test_code_fingerprint_function_action_name_ignored():
    """Renaming an action with ``with_name`` does not change what it computes."""
    act = cell("def helper(x):\n    return x\n", ACTION_CELL)["f"]
    assert code_fingerprint(act.with_name("other")) == code_fingerprint(act)


CLASS_ACTION = """
from nbflow import Action

class Scale(Action):
    reads = ["x"]
    writes = ["y"]

    def __init__(self, factor):
        self.factor = factor

    def run(self, state):
        return {"y": self._apply(state["x"])}

    def _apply(self, x):
        return x * self.factor
"""


def test_code_fingerprint_class_action_method_and_attribute_differ():
    """A class-based action counts its methods (helpers too) and its data attributes."""
    base = cell(CLASS_ACTION)["Scale"]
    edited = cell(CLASS_ACTION.replace("x * self.factor", "x + self.factor"))["Scale"]
    assert code_fingerprint(base(2)) == code_fingerprint(base(2))
    assert code_fingerprint(base(2)) != code_fingerprint(base(3))
    assert code_fingerprint(base(2)) != code_fingerprint(edited(2))


def test_code_fingerprint_class_action_cached_properties_ignored():
    """Values the engine caches on an action once read (``is_async``) do not count."""
    act = cell(CLASS_ACTION)["Scale"](2)
    before = code_fingerprint(act)
    assert act.is_async is False
    assert act.inputs == ([], [])
    assert code_fingerprint(act) == before


def _runnable(source_a: str, condition=None, halt_after: str = "b") -> RunnableGraph:
    namespace = cell(
        source_a,
        """
        from nbflow import action

        @action(reads=["y"], writes=["z"])
        def b(state):
            return state.update(z=state["y"] + 1)
        """,
    )
    graph = (
        GraphBuilder()
        .with_actions(a=namespace["a"], b=namespace["b"])
        .with_transitions(("a", "b", condition or when(go=True)))
        .build()
    )
    return RunnableGraph(graph, entrypoint="a", halt_after=halt_after)


A_V1 = """
from nbflow import action

@action(reads=["x", "go"], writes=["y"])
def a(state):
    return state.update(y=state["x"] * 2)
"""


def test_code_fingerprint_runnable_graph_inner_body_differs():
    """Editing the body of an action inside a RunnableGraph changes the graph's fingerprint."""
    assert code_fingerprint(_runnable(A_V1)) == code_fingerprint(_runnable(A_V1))
    assert code_fingerprint(_runnable(A_V1)) != code_fingerprint(_runnable(A_V1.replace("* 2", "* 3")))


def test_code_fingerprint_runnable_graph_structure_differs():
    """A RunnableGraph's conditions (and their values) and halt points count."""
    base = code_fingerprint(_runnable(A_V1))
    assert code_fingerprint(_runnable(A_V1, condition=when(go=False))) != base
    assert code_fingerprint(_runnable(A_V1, condition=expr("x > 1"))) != base
    assert code_fingerprint(_runnable(A_V1, condition=expr("x > 1"))) != code_fingerprint(
        _runnable(A_V1, condition=expr("x > 2"))
    )
    assert code_fingerprint(_runnable(A_V1, halt_after="a")) != base


# -- values ----------------------------------------------------------------------------------


def test_value_fingerprint_dict_order_insensitive():
    """Dicts with the same items in another insertion order agree, with any key types."""
    assert value_fingerprint({"a": 1, "b": 2}) == value_fingerprint({"b": 2, "a": 1})
    assert value_fingerprint({1: "a", (2, 3): "b"}) == value_fingerprint({(2, 3): "b", 1: "a"})
    assert value_fingerprint({"a": 1}) != value_fingerprint({"a": 2})


def test_value_fingerprint_list_order_sensitive():
    """Lists and tuples in another order differ."""
    assert value_fingerprint([1, 2]) != value_fingerprint([2, 1])
    assert value_fingerprint((1, 2)) != value_fingerprint((2, 1))


def test_value_fingerprint_set_order_insensitive():
    """Sets built in different orders agree, and agree with frozensets."""
    words = [f"w{i}" for i in range(50)]
    assert value_fingerprint(set(words)) == value_fingerprint(set(reversed(words)))
    # A frozenset equals the set with the same items, so it fingerprints the same.
    assert value_fingerprint(frozenset(words)) == value_fingerprint(set(words))


def test_value_fingerprint_structures_do_not_collide():
    """Chunks are tagged and length-prefixed: concatenations, nestings and types stay apart."""
    distinct = [
        ("ab", "c"), ("a", "bc"), ["ab", "c"], "abc", b"abc", ("a", ("b", "c")), (("a", "b"), "c"),
        [[1], 2], [1, [2]], [], (), {}, set(), None, 0, 0.0, False, 1, 1.0, True, -1, 2**70, "1",
        {"a": "bc"}, {"ab": "c"},
    ]  # fmt: skip
    digests = [value_fingerprint(v) for v in distinct]
    assert len(set(digests)) == len(distinct)


def test_value_fingerprint_state_like_mapping_and_list():
    """A State fingerprints as the dict of its items, a StateList as a list."""
    assert value_fingerprint(State(a=1, b=[2])) == value_fingerprint({"b": [2], "a": 1})
    grown = State(h=StateList()).append(h=1).append(h=2)["h"]
    assert value_fingerprint(grown) == value_fingerprint([1, 2])


def test_value_fingerprint_self_reference_terminates():
    """A list that contains itself terminates."""
    loop: list = [1]
    loop.append(loop)
    assert value_fingerprint(loop) == value_fingerprint(loop)


def test_value_fingerprint_dataclass_by_type_and_fields():
    """Dataclasses count by type name and field values."""

    @dataclasses.dataclass
    class Point:
        x: int
        y: int

    @dataclasses.dataclass
    class Pair:
        x: int
        y: int

    assert value_fingerprint(Point(1, 2)) == value_fingerprint(Point(1, 2))
    assert value_fingerprint(Point(1, 2)) != value_fingerprint(Point(1, 3))
    assert value_fingerprint(Point(1, 2)) != value_fingerprint(Pair(1, 2))


def test_value_fingerprint_pydantic_by_type_and_fields():
    """Pydantic models count by type name and field values."""
    pydantic = pytest.importorskip("pydantic")

    class Config(pydantic.BaseModel):
        lr: float
        layers: list[int]

    assert value_fingerprint(Config(lr=0.1, layers=[1])) == value_fingerprint(Config(lr=0.1, layers=[1]))
    assert value_fingerprint(Config(lr=0.1, layers=[1])) != value_fingerprint(Config(lr=0.2, layers=[1]))


def test_value_fingerprint_numpy_dtype_shape_and_bytes():
    """numpy arrays count by dtype, shape and contents; views and copies of equal data agree."""
    np = pytest.importorskip("numpy")
    a = np.arange(6, dtype=np.int64)
    assert value_fingerprint(a) == value_fingerprint(a.copy())
    assert value_fingerprint(a) != value_fingerprint(a.astype(np.int32))
    assert value_fingerprint(a) != value_fingerprint(a.reshape(2, 3))
    assert value_fingerprint(a.reshape(2, 3).T) == value_fingerprint(np.ascontiguousarray(a.reshape(2, 3).T))
    changed = a.copy()
    changed[3] = 99
    assert value_fingerprint(a) != value_fingerprint(changed)
    assert value_fingerprint(np.float64(1.0)) != value_fingerprint(1.0)
    assert value_fingerprint(np.array([1, "a"], dtype=object)) != value_fingerprint(
        np.array([1, "b"], dtype=object)
    )


def test_value_fingerprint_pandas_values_labels_and_dtypes():
    """pandas objects count by values, index, column names and dtypes."""
    pd = pytest.importorskip("pandas")
    df = pd.DataFrame({"a": [1, 2], "b": ["x", "y"]})
    assert value_fingerprint(df) == value_fingerprint(df.copy())
    assert value_fingerprint(df) != value_fingerprint(df.assign(a=[1, 3]))
    assert value_fingerprint(df) != value_fingerprint(df.rename(columns={"a": "c"}))
    assert value_fingerprint(df) != value_fingerprint(df.set_axis([5, 6]))
    assert value_fingerprint(df) != value_fingerprint(df.astype({"a": "float64"}))
    assert value_fingerprint(df["a"]) != value_fingerprint(df["a"].rename("z"))
    assert value_fingerprint(df.index) != value_fingerprint(pd.RangeIndex(3))


def test_value_fingerprint_pandas_object_columns_by_cell():
    """Object columns are hashed cell by cell: 1 and "1" differ, and list cells count."""
    pd = pytest.importorskip("pandas")
    ints = pd.DataFrame({"a": pd.Series([1, "x"], dtype=object)})
    strs = pd.DataFrame({"a": pd.Series(["1", "x"], dtype=object)})
    assert value_fingerprint(ints) != value_fingerprint(strs)
    lists = pd.DataFrame({"a": pd.Series([[1, 2], [3]], dtype=object)})
    assert value_fingerprint(lists) == value_fingerprint(lists.copy())
    assert value_fingerprint(lists) != value_fingerprint(
        pd.DataFrame({"a": pd.Series([[1, 2], [4]], dtype=object)})
    )
    multi = pd.MultiIndex.from_tuples([(1, "a"), (2, "b")])
    assert value_fingerprint(pd.Series([1, 2], index=multi)) != value_fingerprint(pd.Series([1, 2]))


def test_value_fingerprint_function_by_code():
    """A notebook function passed as a value counts by its code, as in code_fingerprint."""
    assert value_fingerprint({"loss": cell(SQUARE)["f"]}) == value_fingerprint({"loss": cell(SQUARE)["f"]})
    edited = cell(SQUARE.replace("+ 1", "+ 2"))["f"]
    assert value_fingerprint({"loss": cell(SQUARE)["f"]}) != value_fingerprint({"loss": edited})


PLAIN_CLASS = """
class Config:
    def __init__(self, lr, tags):
        self.lr = lr
        self.tags = tags

    def describe(self):
        return f"lr={self.lr}"
"""


def test_value_fingerprint_plain_object_by_class_and_attributes():
    """A plain class instance counts by its class's code and its attributes, not by pickle bytes."""
    config = cell(PLAIN_CLASS)["Config"]
    assert value_fingerprint(config(0.1, {"a", "b"})) == value_fingerprint(config(0.1, {"b", "a"}))
    assert value_fingerprint(config(0.1, {"a"})) != value_fingerprint(config(0.2, {"a"}))
    edited = cell(PLAIN_CLASS.replace("lr={self.lr}", "learning rate {self.lr}"))["Config"]
    assert value_fingerprint(config(0.1, {"a"})) != value_fingerprint(edited(0.1, {"a"}))


def test_value_fingerprint_library_objects_by_pickle():
    """Library objects with their own pickling (dates, paths, decimals) fingerprint by value."""
    import datetime
    import decimal
    import pathlib

    assert value_fingerprint(datetime.date(2024, 1, 2)) != value_fingerprint(datetime.date(2024, 1, 3))
    assert value_fingerprint(pathlib.Path("a/b")) == value_fingerprint(pathlib.Path("a") / "b")
    assert value_fingerprint(decimal.Decimal("1.5")) != value_fingerprint(decimal.Decimal("1.50"))


def test_value_fingerprint_unpicklable_raises_with_fix():
    """A value that is not data and cannot be pickled raises a TypeError naming the type and the fix."""
    with pytest.raises(TypeError) as info:
        value_fingerprint({"lock": threading.Lock()})
    message = str(info.value)
    assert "Cannot fingerprint a _thread.lock value" in message
    assert "Build the object inside the action" in message


# -- stability across processes --------------------------------------------------------------

_CROSS_PROCESS = """
import json, sys
from nbflow.fingerprint import code_fingerprint, value_fingerprint
namespace = {"__name__": "__main__"}
exec(sys.argv[1], namespace)
print(json.dumps([code_fingerprint(namespace["f"]), value_fingerprint(namespace["VALUE"])]))
"""

_CROSS_SOURCE = """
WORDS = {"alpha", "beta", "gamma", "delta"}

def helper(x):
    return {k: x for k in WORDS if k in {"alpha", "gamma"}}

def f(x, tags=frozenset({"red", "green", "blue"})):
    return sorted(helper(x)), [t for t in tags if t in ("red", "blue")]

class Config:
    def __init__(self, tags):
        self.tags = tags

VALUE = {
    "b": {"x", "y", "z"},
    "a": ({"k": [1, 2.5, None]}, frozenset({"p", "q"})),
    3: (b"raw", True),
    "config": Config({"red", "green", "blue", "cyan"}),
}
"""


def test_fingerprints_stable_across_interpreters():
    """Two fresh interpreters with different hash seeds agree with each other and with this one."""
    results = []
    for seed in ("1", "4242"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        done = subprocess.run(
            [sys.executable, "-c", _CROSS_PROCESS, _CROSS_SOURCE],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        results.append(json.loads(done.stdout))
    namespace = cell(_CROSS_SOURCE)
    here = [code_fingerprint(namespace["f"]), value_fingerprint(namespace["VALUE"])]
    assert results[0] == results[1] == here


# -- actions describe themselves ----------------------------------------------------------------


def test_code_fingerprint_function_that_runs_a_global_runnable_graph_sees_its_actions():
    """A function that reads a RunnableGraph global changes fingerprint when an action inside it is edited."""
    namespace = {"__name__": "__main__", "GRAPH": _runnable(A_V1)}
    caller = cell("def f(state):\n    return GRAPH\n", namespace=namespace)["f"]
    before = code_fingerprint(caller)
    namespace["GRAPH"] = _runnable(A_V1.replace("* 2", "* 3"))
    assert code_fingerprint(caller) != before


CUSTOM_PARTS = """
from nbflow import Action
from nbflow.core.actions import FingerprintParts

class Load(Action):
    reads, writes = [], ["data"]

    def __init__(self, path, client):
        self.path, self.client = path, client

    def run(self, state):
        return {"data": self.path}

    def fingerprint_parts(self):
        # Only the path decides what is loaded; the client is how.
        return FingerprintParts(code=type(self), data={"path": self.path})
"""


def test_code_fingerprint_action_that_overrides_fingerprint_parts_is_keyed_by_what_it_says():
    """An action's own fingerprint_parts decides: its path counts, the client it holds does not."""
    load = cell(CUSTOM_PARTS)["Load"]
    assert code_fingerprint(load("a.csv", client=object())) == code_fingerprint(
        load("a.csv", client=object())
    )
    assert code_fingerprint(load("a.csv", client=None)) != code_fingerprint(load("b.csv", client=None))


def test_code_fingerprint_action_bound_value_that_cannot_be_digested_is_an_error_naming_its_type():
    """A bound input is data: one that cannot be digested is refused, never taken as equal to another."""
    import threading

    action_ = cell(SQUARE, "from nbflow import action\ng = action(reads=['x'], writes=['y'])(f)\n")["g"]
    with pytest.raises(TypeError, match=r"Cannot fingerprint a _thread\.lock value"):
        code_fingerprint(action_.bind(k=threading.Lock()))
