"""serde: exact JSON round trips, tagged types, register_serde, pickle opt-in, and error messages."""

import dataclasses
import datetime as dt
import decimal
import enum
import json
import math
import pathlib
import subprocess
import sys
import threading
import typing
import uuid
import zoneinfo

import hypothesis.strategies as st
import pytest
from hypothesis import given

from nbflow.core.state import State
from nbflow.errors import NbflowError, SerializationError
from nbflow.persistence.serde import dumps, from_json, loads, register_serde, to_json, unregister_serde

TAG = "__nbflow__"


# -- module-level types, so that they import back by path ---------------------------------------------


class Color(enum.Enum):
    RED = "red"
    BLUE = "blue"


class Level(enum.IntEnum):
    LOW = 1
    HIGH = 2


class Perm(enum.Flag):
    R = 4
    W = 2


@dataclasses.dataclass
class Point:
    x: float
    y: float
    tags: tuple = ()


@dataclasses.dataclass(frozen=True)
class Run:
    name: str
    start: Point
    when: dt.datetime
    total: int = dataclasses.field(init=False, default=0)


class Pair(typing.NamedTuple):
    left: int
    right: tuple


class Opaque:
    """A type nothing knows how to store."""

    def __init__(self, n=0):
        self.n = n

    def __eq__(self, other):
        return type(other) is Opaque and other.n == self.n

    def __hash__(self):
        return hash(self.n)


class Money:
    def __init__(self, cents):
        self.cents = cents

    def __eq__(self, other):
        return type(other) is type(self) and other.cents == self.cents


class Euro(Money):
    pass


class Cent(Euro):
    pass


try:
    import pydantic
except ImportError:  # the pydantic test is skipped then
    pydantic = None

if pydantic is not None:

    class Config(pydantic.BaseModel):
        lr: float
        layers: tuple[int, ...]

    class BigConfig(Config):
        dropout: float = 0.1

    class Trial(pydantic.BaseModel):
        model_config = pydantic.ConfigDict(extra="allow")
        name: str = pydantic.Field(alias="trialName")
        config: Config
        when: dt.datetime
        point: Point | None = None


def same(a, b):
    """Equal, of the same types all the way down (nan equal to nan, -0.0 distinct from 0.0)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, float):
        return repr(a) == repr(b)
    if isinstance(a, complex):
        return same(a.real, b.real) and same(a.imag, b.imag)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict):
        return len(a) == len(b) and all(
            same(ka, kb) and same(va, vb) for (ka, va), (kb, vb) in zip(a.items(), b.items(), strict=True)
        )
    return a == b


@pytest.fixture
def register():
    """register_serde, undone after the test."""
    done = []

    def _register(cls, **kwargs):
        register_serde(cls, **kwargs)
        done.append(cls)

    yield _register
    for cls in done:
        unregister_serde(cls)


# -- round trips of built-in types --------------------------------------------------------------------

BERLIN = zoneinfo.ZoneInfo("Europe/Berlin")

BUILTIN_VALUES = {
    "tuple": (1, "a", None),
    "nested tuple": ((1, 2), [3, (4,)]),
    "empty tuple": (),
    "set": {3, 1, 2},
    "mixed set": {1, "a", (2, 3), None},
    "frozenset": frozenset({"a", "b"}),
    "bytes": b"\x00\xffbinary",
    "bytearray": bytearray(b"abc"),
    "int keys": {1: "a", 2: "b"},
    "tuple keys": {(0, 1): 1.5, (1, 0): 2.5},
    "mixed keys": {"a": 1, 2: "b", None: 3, frozenset({1}): 4},
    "tag-like key": {TAG: "not a tag", "v": 1},
    "nan": float("nan"),
    "inf": float("inf"),
    "-inf": float("-inf"),
    "-0.0": -0.0,
    "big int": 2**100,
    "complex": complex(1.5, float("nan")),
    "datetime": dt.datetime(2024, 2, 29, 13, 5, 7, 123456),
    "datetime zoneinfo": dt.datetime(2024, 3, 31, 12, tzinfo=BERLIN),
    "datetime fold": dt.datetime(2024, 10, 27, 2, 30, tzinfo=BERLIN, fold=1),
    "datetime utc": dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc),
    "datetime offset": dt.datetime(2024, 1, 1, tzinfo=dt.timezone(dt.timedelta(hours=-5, minutes=-30))),
    "date": dt.date(1999, 12, 31),
    "time": dt.time(23, 59, 59, 999999),
    "time tz": dt.time(8, tzinfo=dt.timezone(dt.timedelta(hours=2))),
    "timedelta": dt.timedelta(days=-3, seconds=5, microseconds=7),
    "huge timedelta": dt.timedelta(days=999_999_999, microseconds=1),
    "zoneinfo": BERLIN,
    "timezone": dt.timezone.utc,
    "decimal": decimal.Decimal("1.10"),
    "decimal exponent": decimal.Decimal("-1E+7"),
    "uuid": uuid.UUID("12345678-1234-5678-1234-567812345678"),
    "path": pathlib.Path("/tmp/data.csv"),
    "relative path": pathlib.Path("runs/a"),
    "pure posix path": pathlib.PurePosixPath("a/b"),
    "pure windows path": pathlib.PureWindowsPath(r"C:\data\x.csv"),
    "enum": Color.BLUE,
    "int enum": Level.HIGH,
    "flag combination": Perm.R | Perm.W,
    "dataclass": Point(1.0, 2.5, ("a", 1)),
    "nested frozen dataclass": Run("r1", Point(0.0, float("inf")), dt.datetime(2024, 1, 1)),
    "namedtuple": Pair(1, (2, 3)),
}


@pytest.mark.parametrize("value", BUILTIN_VALUES.values(), ids=BUILTIN_VALUES.keys())
def test_loads_round_trips_builtin_types_exactly(value):
    """dumps then loads gives an equal value of the same type, for every built-in type."""
    back = loads(dumps(value))
    assert same(back, value), (back, value)


def test_loads_round_trips_a_nested_structure():
    """Types inside containers inside types all come back as they were."""
    value = {
        "points": [Point(i, -i, (i,)) for i in range(3)],
        "by_color": {Color.RED: {(1, 2): {b"x", b"y"}}, Color.BLUE: frozenset()},
        "when": [dt.date(2024, 1, 1), (dt.timedelta(hours=1), decimal.Decimal("0.1"))],
        "stats": {"loss": [0.5, float("nan"), float("-inf")], "ok": True, "note": None},
    }
    assert same(loads(dumps(value)), value)


def test_loads_non_init_dataclass_field_keeps_its_value():
    """A field with init=False is restored to the value it held, not its default."""
    run = Run("r", Point(0, 0), dt.datetime(2024, 1, 1))
    object.__setattr__(run, "total", 42)
    assert loads(dumps(run)).total == 42


def test_dumps_keeps_dict_key_order():
    """Keys come back in insertion order, with string and non-string keys alike."""
    assert list(loads(dumps({"b": 1, "a": 2, "c": 3}))) == ["b", "a", "c"]
    assert list(loads(dumps({3: 0, 1: 0, 2: 0}))) == [3, 1, 2]


def test_dumps_leaves_plain_json_untagged():
    """Plain JSON data is stored as itself, so other tools can read it."""
    value = {"lr": 0.1, "layers": [64, 32], "name": "mlp", "done": False, "best": None}
    assert to_json(value) == value
    assert dumps(value) == json.dumps(value, separators=(",", ":"))


def test_to_json_tags_values_json_lacks():
    """A tuple becomes a tagged object holding its items."""
    assert to_json((1, (2,))) == {TAG: "tuple", "v": [1, {TAG: "tuple", "v": [2]}]}


def test_dumps_writes_compact_json_without_nan_tokens():
    """The text has no spaces and no NaN/Infinity literals, so strict JSON parsers accept it."""
    text = dumps({"a": [float("nan"), float("inf")]})
    assert " " not in text
    json.loads(text, parse_constant=lambda name: pytest.fail(f"non-standard JSON constant {name}"))


def test_dumps_equal_sets_give_equal_text():
    """Sets are written sorted, so equal sets built in any order give the same JSON."""
    a = {(2, "b"), 1, "z", None, (1, "a")}
    b = {(1, "a"), None, "z", 1, (2, "b")}
    assert dumps(a) == dumps(b)
    assert dumps({3, 1, 2}) == '{"__nbflow__":"set","v":[1,2,3]}'


def test_to_json_statelist_becomes_list():
    """A StateList (what State.append builds) is stored as a plain list."""
    state = State().append(history=1).append(history=(2, 3))
    assert to_json(state["history"]) == [1, {TAG: "tuple", "v": [2, 3]}]
    assert loads(dumps(state["history"])) == [1, (2, 3)]


def test_from_json_accepts_what_plain_json_wrote():
    """Data written by json.dumps (NaN literal included) loads as itself."""
    assert from_json(json.loads(json.dumps({"x": [1, 2.5, float("nan")]})))["x"][:2] == [1, 2.5]


# -- error messages --------------------------------------------------------------------------------------


def test_serialization_error_is_an_nbflow_error_and_a_type_error():
    """SerializationError can be caught as NbflowError or as TypeError."""
    with pytest.raises(NbflowError):
        dumps(Opaque())
    with pytest.raises(TypeError):
        dumps(Opaque())


def test_dumps_unsupported_value_names_path_type_and_both_fixes():
    """The message names where the value sits, its type, register_serde and allow_pickle=True."""
    with pytest.raises(SerializationError) as info:
        dumps({"model": [1, 2, {"weights": Opaque()}]}, path="state")
    message = str(info.value)
    assert message.startswith("Cannot serialize state key 'model' -> [2] -> 'weights': test_serde.Opaque ")
    assert "nbflow.register_serde(Opaque, tag=..., encode=..., decode=...)" in message
    assert "allow_pickle=True" in message


def test_dumps_unsupported_value_at_the_root_names_the_default_path():
    """Without path=, the message calls the value 'value'."""
    with pytest.raises(SerializationError, match=r"^Cannot serialize value: test_serde\.Opaque is not"):
        dumps(Opaque())


def test_dumps_unsupported_dataclass_field_names_the_attribute():
    """A bad field of a dataclass appears in the path as .field."""
    with pytest.raises(
        SerializationError, match=r"Cannot serialize value -> \[0\] -> \.y: test_serde\.Opaque"
    ):
        dumps([Point(1, Opaque())])


def test_dumps_unsupported_dict_key_names_the_key():
    """A key that cannot be stored is named as the key, not as a value."""
    with pytest.raises(SerializationError, match=r"value -> \(the key <test_serde\.Opaque"):
        dumps({Opaque(): 1})


def test_dumps_local_dataclass_says_to_define_it_at_module_level():
    """A dataclass defined in a function cannot be imported back, and the message says why."""

    @dataclasses.dataclass
    class Local:
        x: int

    with pytest.raises(SerializationError) as info:
        dumps(Local(1))
    assert "defined inside a function" in str(info.value)
    assert "define it at module level" in str(info.value)
    assert "register_serde(Local" in str(info.value)


def test_dumps_reference_cycle_raises_serialization_error():
    """A list that contains itself is reported, not a bare RecursionError."""
    loop = []
    loop.append(loop)
    with pytest.raises(SerializationError, match="reference cycle"):
        dumps(loop)


def test_loads_unknown_tag_names_the_tag_and_register_serde():
    """A tag nothing is registered for is named, with the register_serde call that would fix it."""
    with pytest.raises(SerializationError) as info:
        loads('{"run":{"m":{"__nbflow__":"my.Model","v":[1]}}}', path="state")
    message = str(info.value)
    assert message.startswith("Cannot load state key 'run' -> 'm': it was stored with tag 'my.Model'")
    assert "nbflow.register_serde(<the class>, tag='my.Model', encode=..., decode=...)" in message


def test_loads_malformed_tagged_object_says_so():
    """A tagged object with extra keys is reported as malformed."""
    with pytest.raises(SerializationError, match="malformed tagged value"):
        loads('{"__nbflow__":"tuple","v":[],"extra":1}')


def test_loads_missing_class_names_its_import_path():
    """A dataclass whose class cannot be imported is named by module and name."""
    data = {TAG: "dataclass", "v": {"cls": "test_serde:Renamed", "fields": {}}}
    with pytest.raises(SerializationError, match=r"class 'test_serde:Renamed', which cannot be imported"):
        from_json(data)


def test_loads_refuses_to_call_what_is_not_the_expected_kind_of_class():
    """A file naming an arbitrary function as a dataclass gets an error, not a call."""
    data = {TAG: "dataclass", "v": {"cls": "os:system", "fields": {"command": "echo hacked"}}}
    with pytest.raises(
        SerializationError, match=r"names 'os:system' as a dataclass, but that is builtin_function"
    ):
        from_json(data)


def test_loads_path_of_a_non_pathlib_class_is_refused():
    """A path payload naming something other than a pathlib class is not called."""
    with pytest.raises(
        SerializationError, match=r"decoding tag 'path' raised ValueError: 'os' is not a pathlib class"
    ):
        loads('{"__nbflow__":"path","v":{"cls":"os","path":"x"}}')


def test_loads_damaged_payload_names_the_tag():
    """A payload the built-in decoder cannot read is reported with its tag and path."""
    with pytest.raises(SerializationError, match=r"value -> \[1\]: decoding tag 'uuid' raised ValueError"):
        loads('[1,{"__nbflow__":"uuid","v":"not-a-uuid"}]')


def test_from_json_rejects_data_json_cannot_hold():
    """from_json on a tuple says to pass what json.loads returns."""
    with pytest.raises(SerializationError, match=r"value -> \[0\]: tuple is not JSON data"):
        from_json([(1, 2)])


# -- pickle, only when asked -----------------------------------------------------------------------------


def test_dumps_allow_pickle_stores_an_unsupported_value():
    """With allow_pickle=True both ways, an unsupported value round trips through pickle."""
    text = dumps({"m": Opaque(7)}, allow_pickle=True)
    assert '"__nbflow__":"pickle"' in text
    assert loads(text, allow_pickle=True) == {"m": Opaque(7)}


def test_dumps_allow_pickle_pickles_only_the_unsupported_leaf():
    """Around a pickled value, everything else is still tagged JSON."""
    data = to_json({"a": (1, Opaque())}, allow_pickle=True)
    assert data["a"][TAG] == "tuple"
    assert data["a"]["v"][0] == 1
    assert data["a"]["v"][1][TAG] == "pickle"


def test_dumps_allow_pickle_stores_a_class_defined_in_a_function():
    """cloudpickle stores a local dataclass by value, so it round trips."""

    @dataclasses.dataclass
    class Local:
        x: int

    back = loads(dumps(Local(3), allow_pickle=True), allow_pickle=True)
    assert back.x == 3
    assert type(back).__name__ == "Local"


def test_loads_refuses_a_pickle_without_allow_pickle():
    """Loading a pickle needs allow_pickle=True, and the message says unpickling runs code."""
    text = dumps({"m": Opaque()}, allow_pickle=True)
    with pytest.raises(SerializationError) as info:
        loads(text)
    message = str(info.value)
    assert message.startswith("Cannot load value key 'm': it holds a pickled test_serde.Opaque.")
    assert "Unpickling runs arbitrary code" in message
    assert "pass allow_pickle=True only for files you trust" in message


def test_dumps_allow_pickle_reports_a_value_that_cannot_be_pickled():
    """A value that neither JSON nor pickle can hold names the pickling error and register_serde."""
    with pytest.raises(SerializationError) as info:
        dumps({"lock": threading.Lock()}, allow_pickle=True)
    message = str(info.value)
    assert message.startswith("Cannot serialize value key 'lock': _thread.lock is not a type")
    assert "pickling it failed with TypeError" in message
    assert "register_serde(lock" in message


# -- register_serde ----------------------------------------------------------------------------------------


def test_register_serde_round_trips_a_user_type(register):
    """A registered type is stored under its tag and decoded with its decode function."""
    register(Money, tag="money", encode=lambda m: m.cents, decode=Money)
    assert to_json(Money(250)) == {TAG: "money", "v": 250}
    assert loads(dumps([Money(250)])) == [Money(250)]


def test_register_serde_payload_may_hold_non_json_types(register):
    """encode may return tuples, dates and other types serde knows; decode receives them decoded."""
    register(
        Money, tag="money", encode=lambda m: (m.cents, dt.date(2024, 1, 1)), decode=lambda v: Money(v[0])
    )
    seen = []
    register(Euro, tag="euro", encode=lambda m: (m.cents,), decode=lambda v: seen.append(v) or Euro(v[0]))
    assert loads(dumps(Money(5))) == Money(5)
    assert loads(dumps(Euro(6))) == Euro(6)
    assert seen == [(6,)]


def test_register_serde_wins_over_builtin_handling(register):
    """A registration for a type serde knows (Decimal, a dataclass) is used instead of the built-in."""
    register(decimal.Decimal, tag="dec-as-float", encode=float, decode=decimal.Decimal)
    register(Point, tag="point", encode=lambda p: [p.x, p.y], decode=lambda v: Point(*v))
    assert to_json(decimal.Decimal("0.5")) == {TAG: "dec-as-float", "v": 0.5}
    assert to_json(Point(1, 2)) == {TAG: "point", "v": [1, 2]}
    assert loads(dumps(Point(1, 2))) == Point(1, 2)


def test_register_serde_subclass_uses_the_nearest_registered_base(register):
    """Euro (unregistered) uses Money's registration; Cent uses Euro's once Euro is registered."""
    register(Money, tag="money", encode=lambda m: m.cents, decode=Money)
    assert to_json(Euro(3)) == {TAG: "money", "v": 3}
    register(Euro, tag="euro", encode=lambda m: m.cents, decode=Euro)
    assert to_json(Cent(4)) == {TAG: "euro", "v": 4}
    assert loads(dumps(Cent(4))) == Euro(4)


def test_unregister_serde_restores_builtin_handling(register):
    """After unregister_serde, Decimal is stored by the built-in handler again."""
    register(decimal.Decimal, tag="dec-as-float", encode=float, decode=decimal.Decimal)
    unregister_serde(decimal.Decimal)
    assert to_json(decimal.Decimal("0.5")) == {TAG: "decimal", "v": "0.5"}


def test_register_serde_same_class_name_again_replaces_it(register):
    """A class redefined under the same module and name (a notebook cell run twice) takes over the tag."""
    first = type("Thing", (), {"__module__": __name__})
    second = type("Thing", (), {"__module__": __name__})
    register(first, tag="thing", encode=lambda t: 1, decode=lambda v: first())
    register(second, tag="thing", encode=lambda t: 2, decode=lambda v: second())
    assert to_json(second()) == {TAG: "thing", "v": 2}
    assert type(loads(dumps(second()))) is second


def test_register_serde_rejects_a_tag_another_class_uses(register):
    """Two different classes cannot share a tag; the message names the owner and unregister_serde."""
    register(Money, tag="money", encode=lambda m: m.cents, decode=Money)
    with pytest.raises(SerializationError) as info:
        register_serde(Opaque, tag="money", encode=str, decode=str)
    assert "already used by test_serde.Money" in str(info.value)
    assert "unregister_serde(Money)" in str(info.value)


def test_register_serde_rejects_a_builtin_tag():
    """A built-in tag such as 'tuple' cannot be taken, and the message suggests another."""
    with pytest.raises(
        SerializationError,
        match=r"'tuple' is a built-in tag\. Choose another, such as tag='test_serde\.Money'",
    ):
        register_serde(Money, tag="tuple", encode=str, decode=str)


def test_register_serde_rejects_json_types():
    """dict, list and the JSON scalars are stored as themselves and cannot be registered."""
    with pytest.raises(
        SerializationError, match=r"cannot take dict: its instances are stored as JSON already"
    ):
        register_serde(dict, tag="d", encode=str, decode=str)


def test_register_serde_rejects_an_instance_and_a_non_callable():
    """An instance instead of a class, or a non-callable encode, is reported with the fix."""
    with pytest.raises(SerializationError, match=r"takes a class; got .*Money.*Pass the class itself"):
        register_serde(Money(1), tag="m", encode=str, decode=str)
    with pytest.raises(SerializationError, match=r"needs a callable encode=; got str"):
        register_serde(Money, tag="m", encode="cents", decode=str)


def test_register_serde_encode_error_names_the_path_and_the_function(register):
    """An exception inside a registered encode is reported with the path and chained."""

    def broken(m):
        raise ValueError("no cents")

    register(Money, tag="money", encode=broken, decode=Money)
    with pytest.raises(SerializationError) as info:
        dumps({"price": Money(1)})
    assert str(info.value).startswith(
        "Cannot serialize value key 'price': the encode= function registered for test_serde.Money raised ValueError: no cents."
    )
    assert isinstance(info.value.__cause__, ValueError)


# -- lazy imports ---------------------------------------------------------------------------------------------


def test_serde_import_and_plain_data_pull_in_no_numpy_pandas_or_pydantic():
    """Importing serde and storing stdlib values never imports numpy, pandas or pydantic."""
    code = (
        "import sys, datetime, decimal\n"
        "from nbflow.persistence import serde\n"
        "serde.loads(serde.dumps({'a': (1, {2}), 'b': datetime.date.today(), 'c': decimal.Decimal(1)}))\n"
        "print([m for m in ('numpy', 'pandas', 'pydantic') if m in sys.modules])\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stderr


# -- numpy ----------------------------------------------------------------------------------------------------


def _numpy_arrays(np):
    return {
        "int64 2-d": np.arange(6).reshape(2, 3),
        "float with nan": np.array([1.5, np.nan, -np.inf]),
        "float32": np.array([0.1, 2], dtype=np.float32),
        "big-endian int": np.array([1, 2], dtype=">i4"),
        "bool": np.array([True, False]),
        "complex": np.array([1 + 2j]),
        "unicode": np.array(["ab", "é"]),
        "bytes": np.array([b"x", b"yz"]),
        "datetime64": np.array(["2024-01-01", "NaT"], dtype="M8[D]"),
        "timedelta64": np.array([1, 2], dtype="m8[ns]"),
        "empty": np.zeros((0, 3)),
        "0-d": np.array(5.0),
        "structured": np.array([(1, 2.0)], dtype=[("a", "<i4"), ("b", ">f8")]),
        "fortran order": np.asfortranarray(np.arange(6.0).reshape(2, 3)),
    }


def test_loads_round_trips_numpy_arrays_with_dtype_and_shape():
    """Numeric, string, datetime and structured arrays come back with the same dtype, shape and values."""
    np = pytest.importorskip("numpy")
    for name, array in _numpy_arrays(np).items():
        back = loads(dumps(array))
        assert type(back) is np.ndarray, name
        assert back.dtype == array.dtype and back.shape == array.shape, name
        assert back.tobytes() == np.ascontiguousarray(array).tobytes(), name
        assert back.flags.writeable, name


def test_loads_round_trips_numpy_object_arrays_item_by_item():
    """An object array stores each item with serde, so tuples and equal-length lists keep their shape."""
    np = pytest.importorskip("numpy")
    array = np.empty((2, 2), dtype=object)
    array[0, 0], array[0, 1], array[1, 0], array[1, 1] = [1, 2], (3, 4), None, dt.date(2024, 1, 1)
    back = loads(dumps(array))
    assert back.dtype == object and back.shape == (2, 2)
    assert same(back.tolist(), array.tolist())


def test_dumps_numpy_arrays_are_raw_bytes_in_base64():
    """A numeric array is stored as its dtype, shape and base64 bytes."""
    np = pytest.importorskip("numpy")
    assert to_json(np.array([1, 2], dtype="<i2")) == {
        TAG: "numpy.ndarray",
        "v": {"dtype": "<i2", "shape": [2], "b64": "AQACAA=="},
    }


def test_loads_round_trips_numpy_scalars():
    """numpy scalars keep their exact numpy type and value."""
    np = pytest.importorskip("numpy")
    scalars = [
        np.float64(1.5),
        np.float32(np.nan),
        np.int8(-3),
        np.uint64(2**64 - 1),
        np.bool_(True),
        np.complex64(1j),
        np.longdouble(1) / 3,
        np.datetime64("2024-01-01T00:00:00.123", "ms"),
        np.timedelta64(5, "ns"),
        np.str_("hé"),
        np.bytes_(b"ab"),
    ]
    for scalar in scalars:
        back = loads(dumps(scalar))
        assert type(back) is type(scalar) and back.dtype == scalar.dtype, scalar
        assert back == scalar or (scalar != scalar and back != back), scalar


def test_dumps_numpy_array_inside_a_state_round_trips():
    """Arrays nested in dicts and lists come back as arrays."""
    np = pytest.importorskip("numpy")
    back = loads(dumps({"weights": [np.ones(3), np.zeros((2, 2), dtype=np.int32)]}))
    assert back["weights"][1].dtype == np.int32
    assert np.array_equal(back["weights"][0], np.ones(3))


# -- pandas ---------------------------------------------------------------------------------------------------


def _frame(pd, np):
    frame = pd.DataFrame(
        {
            "int": [1, 2, 3],
            "float": [1.5, np.nan, 2.0],
            "bool": [True, False, True],
            "str": ["a", "b", None],
            "string": pd.array(["x", None, "z"], dtype="string"),
            "datetime": pd.to_datetime(["2024-01-01", "2024-01-02", None]),
            "datetime ns": pd.to_datetime(["2024-01-01 00:00:00.000000001"] * 3).as_unit("ns"),
            "datetime tz": pd.date_range("2024-03-30 12:00", periods=3, tz="Europe/Berlin"),
            "timedelta": pd.to_timedelta([1, 2, 3], unit="s"),
            "Int64": pd.array([1, None, 3], dtype="Int64"),
            "Float64": pd.array([1.0, None, 2.5], dtype="Float64"),
            "boolean": pd.array([True, None, False], dtype="boolean"),
            "uint8": np.array([1, 2, 255], dtype="uint8"),
            "float32": np.array([1, 2, 3], dtype="float32"),
            "category": pd.Categorical(["lo", "hi", "lo"], categories=["lo", "hi"], ordered=True),
            "object": [1, "a", (2, 3)],
            "period": pd.period_range("2024-01", periods=3, freq="M"),
            "interval": pd.interval_range(0, 3),
        },
        index=pd.Index(["r1", "r2", "r3"], name="run"),
    )
    frame.columns.name = "metric"
    return frame


def test_loads_round_trips_a_dataframe_keeping_index_columns_and_dtypes():
    """A DataFrame of every common dtype comes back equal, dtypes, index and column names included."""
    pd = pytest.importorskip("pandas")
    np = pytest.importorskip("numpy")
    frame = _frame(pd, np)
    back = loads(dumps(frame))
    assert type(back) is pd.DataFrame
    assert back.dtypes.to_dict() == frame.dtypes.to_dict()
    pd.testing.assert_frame_equal(back, frame)
    assert back["object"].iloc[2] == (2, 3)


def test_dumps_numeric_dataframe_columns_are_raw_bytes():
    """int and float columns are stored as base64 bytes, not as one JSON number per cell."""
    pd = pytest.importorskip("pandas")
    text = dumps(pd.DataFrame({"a": [1, 2, 3], "b": [0.25, 0.5, 0.75]}))
    assert text.count('"b64"') == 2
    assert "0.25" not in text


@pytest.mark.parametrize("kind", ["datetime", "multi", "range", "float", "timedelta", "categorical"])
def test_loads_round_trips_a_series_with_each_index_kind(kind):
    """Series keep their name, values and index: DatetimeIndex with freq, MultiIndex, RangeIndex..."""
    pd = pytest.importorskip("pandas")
    index = {
        "datetime": pd.date_range("2024-01-01", periods=4, name="day"),
        "multi": pd.MultiIndex.from_product([["a", "b"], [1, 2]], names=["letter", "n"]),
        "range": pd.RangeIndex(2, 10, 2),
        "float": pd.Index([0.5, 1.5, 2.5, 3.5]),
        "timedelta": pd.timedelta_range("1s", periods=4),
        "categorical": pd.CategoricalIndex(["x", "y", "x", "y"]),
    }[kind]
    series = pd.Series(range(4), index=index, name=("loss", 1))
    series.attrs["unit"] = "nats"
    back = loads(dumps(series))
    pd.testing.assert_series_equal(back, series)
    assert back.attrs == {"unit": "nats"}
    pd.testing.assert_index_equal(loads(dumps(index)), index, exact=True)


def test_loads_round_trips_dataframes_with_unusual_labels():
    """Duplicate columns and index labels, tuple columns, no columns, and attrs all survive."""
    pd = pytest.importorskip("pandas")
    frames = [
        pd.DataFrame([[1, 2], [3, 4]], columns=["a", "a"], index=[0, 0]),
        pd.DataFrame({("a", "x"): [1], ("b", "y"): [2.0]}),
        pd.DataFrame(index=[1, 2]),
        pd.DataFrame(),
    ]
    frames[0].attrs["source"] = "sweep"
    for frame in frames:
        back = loads(dumps(frame))
        pd.testing.assert_frame_equal(back, frame)
        assert back.attrs == frame.attrs


def test_loads_round_trips_pandas_scalars():
    """Timestamp (unit and zone), Timedelta, Period, Interval, NaT and NA keep their types."""
    pd = pytest.importorskip("pandas")
    scalars = [
        pd.Timestamp("2024-01-01 12:00:00.123456789", tz="Europe/Berlin"),
        pd.Timestamp("2024-01-01").as_unit("s"),
        pd.Timedelta("1 days 3ns"),
        pd.Period("2024-03", freq="M"),
        pd.Interval(0.5, 2, closed="left"),
    ]
    for scalar in scalars:
        back = loads(dumps(scalar))
        assert type(back) is type(scalar) and back == scalar, scalar
        assert getattr(back, "unit", None) == getattr(scalar, "unit", None)
    assert loads(dumps(pd.NaT)) is pd.NaT
    assert loads(dumps(pd.NA)) is pd.NA


def test_dumps_dataframe_unsupported_cell_names_the_column():
    """An unstorable object in a column is reported with the column and row position."""
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame({"ok": [1, 2], "bad": [None, Opaque()]})
    with pytest.raises(
        SerializationError,
        match=r"^Cannot serialize state key 'df' -> column 'bad' -> \[1\]: test_serde\.Opaque",
    ):
        dumps({"df": frame}, path="state")


# -- pydantic -------------------------------------------------------------------------------------------------


def test_loads_round_trips_pydantic_models():
    """A model comes back equal, with nested models (subclasses included), aliases and extra fields."""
    pytest.importorskip("pydantic")
    trial = Trial(
        trialName="t1",
        config=BigConfig(lr=0.1, layers=(64, 32), dropout=0.5),
        when=dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc),
        point=Point(1, 2),
        seed=7,
    )
    back = loads(dumps({"trial": trial}))["trial"]
    assert type(back) is Trial
    assert back == trial
    assert type(back.config) is BigConfig
    assert back.config.layers == (64, 32)
    assert back.seed == 7


# -- the property ---------------------------------------------------------------------------------------------

_LEAVES = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text()
    | st.binary()
)
_KEYS = st.none() | st.booleans() | st.integers() | st.text() | st.tuples(st.integers(), st.text())
_VALUES = st.recursive(
    _LEAVES,
    lambda children: (
        st.lists(children)
        | st.lists(children).map(tuple)
        | st.dictionaries(st.text(), children)
        | st.dictionaries(_KEYS, children)
    ),
    max_leaves=30,
)


@given(_VALUES)
def test_loads_round_trips_any_json_ish_value(value):
    """Any nesting of numbers (nan and inf too), strings, bytes, None, tuples, lists and dicts round trips."""
    assert same(loads(dumps(value)), value)


def test_same_helper_tells_types_and_nans_apart():
    """The comparison the property relies on is strict about types, nan and -0.0."""
    assert same([float("nan")], [float("nan")])
    assert not same((1,), [1])
    assert not same(0.0, -0.0)
    assert not same({1: 1}, {True: 1})
    assert math.isnan(loads(dumps(float("nan"))))
