"""State: the Mapping API, derivations that leave the original alone, StateList views, delta folding."""

import copy
import pickle
import random
import re
import sys
import threading
import types

import hypothesis.strategies as st
import pytest
from hypothesis import given, settings

from nbflow import NbflowError, State, StateKeyError, StateList

MISSING = object()


# -- the Mapping API --------------------------------------------------------------------------------


def test_state_getitem_returns_the_value():
    """`state[key]` returns the value stored under the key."""
    state = State(lr=0.1, seed=3)
    assert state["lr"] == 0.1
    assert state["seed"] == 3


def test_state_getitem_missing_key_names_the_key_and_the_known_keys():
    """Reading a missing key raises StateKeyError naming the key, the known keys and the fix."""
    state = State(seed=1, batch_size=32)
    with pytest.raises(StateKeyError) as info:
        state["lr"]
    assert str(info.value) == (
        "State has no key 'lr'. Known keys: ['batch_size', 'seed']. "
        "Add 'lr' to the initial state or to an upstream action's writes."
    )


def test_state_getitem_deleted_key_raises():
    """A key removed by wipe is missing from the derived state, and the message no longer lists it."""
    state = State(a=1, b=2).wipe(delete=["a"])
    with pytest.raises(KeyError) as info:
        state["a"]
    assert "no key 'a'" in str(info.value)
    assert "Known keys: ['b']" in str(info.value)


def test_state_get_returns_value_or_default():
    """`get` returns the value, None for a missing key, or the given default."""
    state = State(a=1, none=None).wipe(delete="gone")
    assert state.get("a") == 1
    assert state.get("none", 5) is None
    assert state.get("missing") is None
    assert state.get("missing", 7) == 7
    assert State(a=1).wipe(delete="a").get("a", "default") == "default"


def test_state_contains_reports_present_keys_only():
    """`in` is true for present keys and false for missing, deleted and non-string keys."""
    state = State(a=1, b=None).update(c=3).wipe(delete="a")
    assert "b" in state
    assert "c" in state
    assert "a" not in state
    assert "zzz" not in state
    assert 1 not in state


def test_state_len_counts_keys_through_updates_and_deletions():
    """`len` follows adds, replacements and deletions without double counting."""
    state = State(a=1, b=2)
    assert len(state) == 2
    state = state.update(a=10, c=3)
    assert len(state) == 3
    state = state.wipe(delete=["a", "missing"])
    assert len(state) == 2
    state = state.wipe(delete="a")
    assert len(state) == 2
    state = state.update(a=1)
    assert len(state) == 3
    assert len(State()) == 0


def test_state_iteration_follows_insertion_order():
    """Keys iterate in the order they were first added; replacing keeps the position, deleting drops it."""
    state = State(b=1, a=2).update(c=3)
    assert list(state) == ["b", "a", "c"]
    assert list(state.update(b=9)) == ["b", "a", "c"]
    assert list(state.wipe(delete="a")) == ["b", "c"]
    assert list(state.keys()) == ["b", "a", "c"]
    assert list(state.items()) == [("b", 1), ("a", 2), ("c", 3)]
    assert list(state.values()) == [1, 2, 3]


def test_state_iteration_order_survives_delta_folding():
    """Keys added one update at a time, past the folding threshold, keep insertion order."""
    state = State()
    for i in range(100):
        state = state.update(**{f"k{i}": i})
    state = state.update(k0="again")
    assert list(state) == [f"k{i}" for i in range(100)]
    assert state["k0"] == "again"


def test_state_readded_key_order_does_not_depend_on_folding():
    """A deleted then re-added key moves to the end, like a dict, whether or not a fold happened."""
    unfolded = State(a=1, b=2).wipe(delete="a").update(a=3)
    folded = State(a=1, b=2).wipe(delete="a").update(**{f"k{i}": i for i in range(20)}).update(a=3)
    model = {"a": 1, "b": 2}
    del model["a"]
    model["a"] = 3
    assert list(unfolded) == list(model) == ["b", "a"]
    assert list(folded) == ["b", *(f"k{i}" for i in range(20)), "a"]


def test_state_equals_state_with_same_items():
    """States with the same items are equal whatever their history; different values are not."""
    direct = State(a=1, b=[1, 2])
    derived = State(a=0).update(a=1).append(b=1).append(b=2)
    assert direct == derived
    assert derived == direct
    assert State(a=1) != State(a=2)
    assert State(a=1) != State(a=1, b=2)
    assert State(a=1, b=2).wipe(delete="b") == State(a=1)


def test_state_siblings_from_one_state_compare_by_their_changes():
    """Two states derived from the same state are equal only when their changes give the same items."""
    parent = State(a=1, b=2)
    assert parent.update(a=2) != parent.update(a=3)
    assert parent.update(a=2) != parent.wipe(delete="a")
    assert parent.update(c=3) != parent.update(d=3)
    assert parent.update(a=2) == parent.update(a=2)
    assert parent.update(a=1) == parent


def test_state_equals_a_dict_with_same_items():
    """A state equals a dict (or any mapping) with the same items, StateLists comparing as lists."""
    state = State(a=1).append(h=1).append(h=2)
    assert state == {"a": 1, "h": [1, 2]}
    assert {"a": 1, "h": [1, 2]} == state  # noqa: SIM300 - the reflected comparison is under test
    assert state == types.MappingProxyType({"h": [1, 2], "a": 1})
    assert state != {"a": 1, "h": [1, 2, 3]}
    assert state != {"a": 1}


def test_state_not_equal_to_non_mappings():
    """Comparing with a non-mapping is simply unequal, not an error."""
    assert State() != []
    assert State(a=1) != [("a", 1)]
    assert State() != None  # noqa: E711


def test_state_is_unhashable_and_cannot_be_assigned_to():
    """A state has no hash, no item assignment and no new attributes."""
    state = State(a=1)
    with pytest.raises(TypeError, match="unhashable"):
        hash(state)
    with pytest.raises(TypeError, match="does not support item assignment"):
        state["a"] = 2  # type: ignore[index]
    with pytest.raises(AttributeError, match="no attribute 'extra'"):
        state.extra = 1  # type: ignore[attr-defined]
    assert state == {"a": 1}


def test_state_init_merges_mapping_and_keywords_and_copies_input():
    """The initial mapping is copied and keyword values win over it; 'initial' is a usable key."""
    source = {"a": 1, "b": 2}
    state = State(source, b=3, initial=4)
    source["a"] = 100
    source["c"] = 5
    assert state == {"a": 1, "b": 3, "initial": 4}
    assert State(None) == {}
    assert State(State(a=1), b=2) == {"a": 1, "b": 2}


def test_state_init_rejects_non_string_keys():
    """A non-string key is a TypeError naming the key, its type and the fix."""
    with pytest.raises(TypeError) as info:
        State({1: "one"})
    assert str(info.value) == (
        "State keys must be strings; got 1 (int). Convert it with str() or use a string name."
    )


def test_state_get_all_returns_plain_dict_with_lists():
    """`get_all` returns a new plain dict in key order, with StateList values as plain lists."""
    state = State(a=1, t=(1, 2)).extend(h=[1, 2]).append(h=3)
    everything = state.get_all()
    assert type(everything) is dict
    assert everything == {"a": 1, "t": (1, 2), "h": [1, 2, 3]}
    assert type(everything["h"]) is list
    assert type(everything["t"]) is tuple
    assert list(everything) == ["a", "t", "h"]
    everything["h"].append(4)
    everything["a"] = 2
    assert state == {"a": 1, "t": (1, 2), "h": [1, 2, 3]}
    assert state.get_all() is not state.get_all()


def test_state_keys_list_returns_keys_in_order():
    """`keys_list` returns the keys as a new list in insertion order."""
    state = State(z=1, a=2).update(m=3).wipe(delete="a")
    assert state.keys_list() == ["z", "m"]
    assert type(state.keys_list()) is list
    assert State().keys_list() == []


def test_state_repr_shows_items():
    """The repr reads like a dict wrapped in State(...), lists shown as lists."""
    assert repr(State(a=1, b="x")) == "State({'a': 1, 'b': 'x'})"
    assert repr(State().extend(h=[1, 2])) == "State({'h': [1, 2]})"
    assert repr(State()) == "State({})"


def test_state_repr_truncates_long_values_and_many_keys():
    """Long values are shortened and only the first 50 keys are shown, with a count of the rest."""
    long_value = repr(State(text="x" * 10_000))
    assert len(long_value) < 100
    assert "..." in long_value
    many = repr(State({f"k{i}": i for i in range(60)}))
    assert "'k49': 49" in many
    assert "'k50'" not in many
    assert many.endswith(", ... (10 more keys)})")


def test_state_repr_html_escapes_keys_and_values():
    """The HTML table escapes keys, values and type names so state cannot inject markup."""
    page = State({"<b>key</b>": "a & <script>"})._repr_html_()
    assert "<caption>State (1 keys)</caption>" in page
    assert "<code>&lt;b&gt;key&lt;/b&gt;</code>" in page
    assert "&amp; &lt;script&gt;" in page
    assert "<script>" not in page
    assert "<b>" not in page
    assert "<td>str</td>" in page


def test_state_repr_html_truncates_after_200_keys():
    """With more than 200 keys the table shows the first 200 and a row counting the rest."""
    page = State({f"k{i}": i for i in range(250)})._repr_html_()
    assert "<caption>State (250 keys)</caption>" in page
    assert "<code>k199</code>" in page
    assert "<code>k200</code>" not in page
    assert "… 50 more keys" in page
    assert page.count("<tr>") == 1 + 200 + 1
    assert "more keys" not in State(a=1)._repr_html_()


# -- StateKeyError ----------------------------------------------------------------------------------


def test_statekeyerror_is_a_keyerror_with_a_plain_message():
    """StateKeyError is caught by `except KeyError` and its str() is the sentence, not a quoted repr."""
    state = State(b=1, a=2)
    try:
        state["x"]
    except KeyError as error:
        assert isinstance(error, StateKeyError)
        assert isinstance(error, NbflowError)
        message = str(error)
    else:
        pytest.fail("reading a missing key did not raise")
    expected = (
        "State has no key 'x'. Known keys: ['a', 'b']. "
        "Add 'x' to the initial state or to an upstream action's writes."
    )
    assert message == expected
    assert not message.startswith(("'", '"'))
    assert str(KeyError(expected)).startswith('"')  # what a plain KeyError would have shown


def test_statekeyerror_without_args_has_empty_message():
    """A StateKeyError raised without a message stringifies to an empty string."""
    assert str(StateKeyError()) == ""


# -- derivations leave the original unchanged --------------------------------------------------------


def test_state_update_returns_new_state_and_keeps_original():
    """`update` adds and replaces keys in a new state; the original is unchanged."""
    original = State(a=1, b=2)
    updated = original.update(b=3, c=4)
    assert updated == {"a": 1, "b": 3, "c": 4}
    assert original == {"a": 1, "b": 2}
    assert updated is not original


def test_state_update_with_no_values_is_equal():
    """`update()` with nothing to change gives an equal state."""
    original = State(a=1)
    assert original.update() == original


def test_state_append_creates_and_grows_lists():
    """`append` creates a one-item list for a new key and appends to an existing one."""
    original = State(a=1)
    once = original.append(h="x")
    twice = once.append(h="y", g=0)
    assert once["h"] == ["x"]
    assert twice["h"] == ["x", "y"]
    assert twice["g"] == [0]
    assert original == {"a": 1}
    assert once == {"a": 1, "h": ["x"]}


def test_state_append_copies_a_plain_list_or_tuple_value():
    """Appending to a key holding a list or tuple copies it; the stored object is not mutated."""
    items = [1, 2]
    original = State(items=items, pair=(1, 2))
    grown = original.append(items=3, pair=3)
    assert grown["items"] == [1, 2, 3]
    assert grown["pair"] == [1, 2, 3]
    assert items == [1, 2]
    assert original["items"] is items
    assert original["pair"] == (1, 2)


def test_state_append_to_non_list_names_the_key():
    """Appending to a key holding a non-list is a TypeError naming the key, its type and the fix."""
    original = State(n=3)
    with pytest.raises(TypeError) as info:
        original.append(n=4)
    assert str(info.value) == (
        "Cannot append to state key 'n': it holds int, not a list. "
        "Use update(n=...) to replace it, or append to a list-valued key."
    )
    assert original == {"n": 3}


def test_state_extend_appends_every_item_of_an_iterable():
    """`extend` appends each item of any iterable, and leaves the original unchanged."""
    original = State().append(h=0)
    extended = original.extend(h=range(1, 3)).extend(h=(x for x in [3]), g=[])
    assert extended["h"] == [0, 1, 2, 3]
    assert extended["g"] == []
    assert original["h"] == [0]
    assert original == {"h": [0]}


def test_state_extend_non_list_names_the_key():
    """Extending a key holding a non-list is a TypeError naming the key."""
    with pytest.raises(TypeError, match="Cannot append to state key 'name': it holds str, not a list"):
        State(name="abc").extend(name=["d"])


def test_state_increment_adds_to_numbers_and_treats_missing_as_zero():
    """`increment` adds the delta, counting a missing key as 0; the original is unchanged."""
    original = State(count=2, loss=0.5)
    bumped = original.increment(count=3, loss=-0.25, fresh=1)
    assert bumped == {"count": 5, "loss": 0.25, "fresh": 1}
    assert original == {"count": 2, "loss": 0.5}


def test_state_increment_non_number_names_the_key():
    """Incrementing a non-number is a TypeError naming the key, the value and the fix."""
    with pytest.raises(TypeError) as info:
        State(name="abc").increment(name=1)
    assert str(info.value) == (
        "Cannot increment state key 'name': it holds str 'abc', not a number. Use update(name=...) instead."
    )


@pytest.mark.parametrize(
    ("value", "shown"),
    [(True, "bool True"), ([1], "list [1]"), (None, "NoneType None")],
)
def test_state_increment_rejects_bools_lists_and_none(value, shown):
    """Booleans, lists and None are not counters: incrementing them names the key and the value."""
    with pytest.raises(TypeError, match=re.escape(f"Cannot increment state key 'x': it holds {shown},")):
        State(x=value).increment(x=1)


def test_state_increment_rejects_statelist():
    """Incrementing a key holding an appended list names the key and the StateList type."""
    with pytest.raises(TypeError, match="Cannot increment state key 'h': it holds StateList"):
        State().append(h=1).increment(h=1)


def test_state_wipe_keep_keeps_only_named_keys():
    """`wipe(keep=...)` keeps only the named keys, ignores unknown ones and keeps the original."""
    original = State(a=1, b=2, c=3)
    kept = original.wipe(keep=["a", "c", "missing"])
    assert kept == {"a": 1, "c": 3}
    assert list(kept) == ["a", "c"]
    assert original == {"a": 1, "b": 2, "c": 3}
    assert original.wipe(keep=[]) == {}


def test_state_wipe_delete_removes_named_keys():
    """`wipe(delete=...)` removes the named keys, ignores unknown ones and keeps the original."""
    original = State(a=1, b=2, c=3)
    wiped = original.wipe(delete=("b", "missing"))
    assert wiped == {"a": 1, "c": 3}
    assert original == {"a": 1, "b": 2, "c": 3}
    assert original.wipe(delete=[]) == original


def test_state_wipe_treats_a_string_as_one_key():
    """A string passed to keep= or delete= is one key, not a sequence of one-letter keys."""
    state = State(ab=1, a=2, b=3)
    assert state.wipe(keep="ab") == {"ab": 1}
    assert state.wipe(delete="ab") == {"a": 2, "b": 3}


@pytest.mark.parametrize("kwargs", [{}, {"keep": ["a"], "delete": ["b"]}, {"keep": [], "delete": []}])
def test_state_wipe_requires_exactly_one_of_keep_or_delete(kwargs):
    """Giving neither or both of keep= and delete= is a ValueError saying to give exactly one."""
    with pytest.raises(ValueError) as info:
        State(a=1, b=2).wipe(**kwargs)
    assert str(info.value) == "State.wipe() takes exactly one of keep=[...] or delete=[...]."


@pytest.mark.parametrize("parameter", ["keep", "delete"])
def test_state_wipe_rejects_a_non_iterable(parameter):
    """A non-iterable keep= or delete= is a TypeError naming the parameter and the type."""
    with pytest.raises(TypeError) as info:
        State(a=1).wipe(**{parameter: 5})
    assert str(info.value) == f"State.wipe({parameter}=...) takes a list of keys; got int."


def test_state_subset_keeps_named_keys_in_argument_order():
    """`subset` returns a new state with only the named keys, in the order they were named."""
    original = State(a=1, b=2, c=3)
    part = original.subset("c", "a")
    assert part == {"c": 3, "a": 1}
    assert list(part) == ["c", "a"]
    assert original == {"a": 1, "b": 2, "c": 3}
    assert original.subset() == {}


def test_state_subset_missing_key_names_it_and_the_known_keys():
    """Subsetting a missing key raises StateKeyError naming the key and listing the known keys."""
    with pytest.raises(StateKeyError) as info:
        State(b=2, a=1).subset("a", "lr")
    assert str(info.value) == (
        "State has no key 'lr'. Known keys: ['a', 'b']. "
        "Add 'lr' to the initial state or to an upstream action's writes."
    )


def test_state_subset_ignore_missing_skips_missing_keys():
    """With ignore_missing=True, missing and deleted keys are left out instead of raising."""
    state = State(a=1, b=2, c=3).wipe(delete="c")
    assert state.subset("a", "c", "zzz", ignore_missing=True) == {"a": 1}


def test_state_subset_lists_are_independent_of_the_original():
    """Appending to a list in a subset does not change the original state's list, and vice versa."""
    original = State().extend(h=[1, 2])
    part = original.subset("h").append(h=3)
    later = original.append(h=4)
    assert part["h"] == [1, 2, 3]
    assert later["h"] == [1, 2, 4]
    assert original["h"] == [1, 2]


def test_state_merge_lets_other_win():
    """`merge` sets every key of the other mapping, which wins on shared keys; both inputs are unchanged."""
    original = State(a=1, b=2)
    other = {"b": 20, "c": 30}
    merged = original.merge(other)
    assert merged == {"a": 1, "b": 20, "c": 30}
    assert list(merged) == ["a", "b", "c"]
    assert original == {"a": 1, "b": 2}
    assert other == {"b": 20, "c": 30}


def test_state_merge_accepts_states_and_other_mappings():
    """`merge` accepts a State (including one with deletions) and read-only mappings."""
    other = State(b=1, gone=0).update(c=2).wipe(delete="gone")
    assert State(a=0, b=0).merge(other) == {"a": 0, "b": 1, "c": 2}
    assert State(a=0).merge(types.MappingProxyType({"a": 5})) == {"a": 5}
    assert other == {"b": 1, "c": 2}


def test_state_merge_rejects_non_mappings():
    """Merging a non-mapping is a TypeError naming what was given."""
    with pytest.raises(TypeError) as info:
        State(a=1).merge([("a", 2)])  # type: ignore[arg-type]
    assert str(info.value) == "State.merge() takes a State or a mapping; got list."


def test_state_merge_rejects_non_string_keys():
    """Merging a mapping with a non-string key is a TypeError naming the key and its type."""
    with pytest.raises(TypeError, match=r"State keys must be strings; got \('a',\) \(tuple\)"):
        State(a=1).merge({("a",): 2})


# -- StateList ----------------------------------------------------------------------------------------


def test_statelist_branching_appends_give_independent_lists():
    """Appending to an older state after a newer one appended gives a separate list; none change."""
    base = State().extend(h=[1, 2])
    newer = base.append(h=3)
    branch = base.append(h="b")
    newest = newer.append(h=4)
    branch2 = branch.append(h="c")
    assert base["h"] == [1, 2]
    assert newer["h"] == [1, 2, 3]
    assert newest["h"] == [1, 2, 3, 4]
    assert branch["h"] == [1, 2, "b"]
    assert branch2["h"] == [1, 2, "b", "c"]


def test_statelist_older_view_sees_only_its_prefix():
    """An older state's list has its own length, iteration and bounds even after newer appends."""
    old = State().extend(h="abc")["h"]
    newer = State(h=old).append(h="d")["h"]
    assert list(old) == ["a", "b", "c"]
    assert len(old) == 3
    assert newer == ["a", "b", "c", "d"]
    with pytest.raises(IndexError, match=r"StateList index out of range \(length 3\)"):
        old[3]
    assert old[-1] == "c"
    assert old[:] == ["a", "b", "c"]
    assert "d" not in old


def test_statelist_equality_with_lists_and_tuples():
    """A StateList equals lists, tuples and StateLists with the same items, and nothing else."""
    items = State().extend(h=[1, 2, 3])["h"]
    assert items == [1, 2, 3]
    assert items == (1, 2, 3)
    assert [1, 2, 3] == items  # noqa: SIM300 - the reflected comparison is under test
    assert items == StateList([1, 2, 3])
    assert items != [1, 2]
    assert items != [1, 2, 4]
    assert items != {1, 2, 3}
    assert items != "123"
    assert StateList() == []


def test_statelist_is_unhashable():
    """A StateList has no hash, like the list it stands for."""
    with pytest.raises(TypeError, match="unhashable"):
        hash(StateList([1]))


def test_statelist_indexing_and_slicing():
    """Integer, negative and slice indexes behave like a list's; slices return plain lists."""
    items = State().extend(h=range(6))["h"]
    assert items[0] == 0
    assert items[-1] == 5
    assert items[-6] == 0
    assert items[1:3] == [1, 2]
    assert type(items[1:3]) is list
    assert items[::-2] == [5, 3, 1]
    assert items[-2:] == [4, 5]
    assert items[10:] == []
    for bad in (6, -7):
        with pytest.raises(IndexError, match=r"StateList index out of range \(length 6\)"):
            items[bad]


def test_statelist_sequence_helpers_work():
    """Membership, index, count, reversed, + and repr behave like a list's."""
    items = State().extend(h=[1, 2, 2])["h"]
    assert 2 in items
    assert items.index(2) == 1
    assert items.count(2) == 2
    assert list(reversed(items)) == [2, 2, 1]
    # The + operators themselves are under test, so no [*items, 3] here.
    assert items + [3] == [1, 2, 2, 3]  # noqa: RUF005
    assert [0] + items == [0, 1, 2, 2]  # noqa: RUF005
    assert type(items + [3]) is list  # noqa: RUF005
    assert repr(items) == "[1, 2, 2]"


def test_statelist_constructor_copies_its_input():
    """Building a StateList copies the iterable, so later changes to the source don't show."""
    source = [1, 2]
    items = StateList(source)
    source.append(3)
    assert items == [1, 2]


def test_statelist_pickle_keeps_only_the_visible_prefix():
    """Pickling an older state's list stores only its own items, not later appends."""
    old = State().extend(h=["first", "second"])
    old.append(h="appended-later-secret")
    data = pickle.dumps(old)
    assert b"appended-later-secret" not in data
    loaded = pickle.loads(data)
    assert loaded == {"h": ["first", "second"]}
    assert isinstance(loaded["h"], StateList)
    assert loaded.append(h="x")["h"] == ["first", "second", "x"]
    assert pickle.loads(pickle.dumps(old["h"])) == ["first", "second"]


def test_statelist_concurrent_appends_to_one_state_are_independent():
    """Eight threads appending to the same state each get the base items plus exactly their own."""
    base = State().extend(history=range(100))
    n_threads = 8
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as possible to provoke races
    try:
        for _ in range(30):
            barrier = threading.Barrier(n_threads)
            results: list = [None] * n_threads

            def work(i, barrier=barrier, results=results):
                barrier.wait()
                results[i] = base.append(history=("thread", i))

            threads = [threading.Thread(target=work, args=(i,)) for i in range(n_threads)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            for i, result in enumerate(results):
                history = result["history"]
                assert len(history) == 101
                assert history[-1] == ("thread", i)
                assert history[:100] == list(range(100))
    finally:
        sys.setswitchinterval(interval)
    assert base["history"] == list(range(100))


def test_statelist_concurrent_append_chains_do_not_interleave():
    """Threads each appending many times from one shared state end with only their own items."""
    base = State().extend(history=["start"])
    n_threads, n_appends = 8, 300
    barrier = threading.Barrier(n_threads)
    results: list = [None] * n_threads

    def work(i):
        barrier.wait()
        state = base
        for j in range(n_appends):
            state = state.append(history=(i, j))
        results[i] = state

    threads = [threading.Thread(target=work, args=(i,)) for i in range(n_threads)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for i, result in enumerate(results):
        assert result["history"] == ["start"] + [(i, j) for j in range(n_appends)]
    assert base["history"] == ["start"]


# -- delta folding -----------------------------------------------------------------------------------


@pytest.mark.parametrize("base_size", [0, 30, 1000])
def test_state_many_updates_and_deletions_match_a_dict_model(base_size):
    """Hundreds of updates over more than sqrt(n) keys, with deletions and re-adds, match a dict."""
    rng = random.Random(base_size)
    model = {f"b{i}": i for i in range(base_size)}
    state = State(model)
    history = [(state, dict(model))]
    pool = [f"k{i}" for i in range(80)] + list(model)[:40]
    deleted: list[str] = []
    for step in range(600):
        roll = rng.random()
        if roll < 0.45:
            keys = rng.sample(pool, rng.randint(1, 3))
            state = state.update(**dict.fromkeys(keys, step))
            model.update(dict.fromkeys(keys, step))
        elif roll < 0.75:
            keys = rng.sample(pool, rng.randint(1, 3))
            state = state.wipe(delete=keys)
            for key in keys:
                if key in model:
                    del model[key]
                    deleted.append(key)
        elif deleted:
            key = deleted.pop(rng.randrange(len(deleted)))
            state = state.update(**{key: f"back-{step}"})
            model[key] = f"back-{step}"
        assert state == model
        assert len(state) == len(model)
        history.append((state, dict(model)))
    for old, expected in history:
        assert old == expected
        assert len(old) == len(expected)
        assert sorted(old) == sorted(expected)
        assert all(old[key] == value for key, value in expected.items())
    # White-box sanity check that this scenario really folded the delta into new bases.
    assert len({id(old._base) for old, _ in history}) > 3
    loaded = pickle.loads(pickle.dumps(state))
    assert loaded == model
    assert loaded.keys_list() == state.keys_list()


def test_state_folded_and_unfolded_states_compare_equal():
    """A state rebuilt from scratch equals one reached through many folds with the same items."""
    state = State({f"k{i}": 0 for i in range(50)})
    for i in range(200):
        state = state.update(**{f"k{i % 70}": i})
    assert state == State(state.get_all())
    assert State(state.get_all()) == state
    assert state != State(state.get_all()).update(k0="different")


@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
def test_state_pickle_round_trip_preserves_items_and_order(protocol):
    """Pickling, with every protocol, gives an equal state with the same key order and lists."""
    state = State(a=1, b="x", c=None).append(h=1).extend(h=[2, 3]).wipe(delete="b")
    for i in range(40):
        state = state.update(**{f"k{i}": i})
    loaded = pickle.loads(pickle.dumps(state, protocol=protocol))
    assert type(loaded) is State
    assert loaded == state
    assert loaded.keys_list() == state.keys_list()
    assert loaded["h"] == [1, 2, 3]
    assert "b" not in loaded


def test_state_copy_and_deepcopy_give_equal_states():
    """copy.copy and copy.deepcopy give equal states whose lists grow independently."""
    state = State(a={"nested": [1]}).extend(h=[1, 2])
    for twin in (copy.copy(state), copy.deepcopy(state)):
        assert twin == state
        assert twin.append(h=3)["h"] == [1, 2, 3]
    assert state["h"] == [1, 2]


# -- property tests -----------------------------------------------------------------------------------

_POOL = [f"k{i}" for i in range(24)] + ["base0", "base1", "base2"]
_keys = st.sampled_from(_POOL)
_ints = st.integers(-3, 3)


def _some(values):
    return st.dictionaries(_keys, values, min_size=1, max_size=8)


_operations = st.one_of(
    st.tuples(st.just("update"), _some(_ints)),
    # Many keys at once, so the delta often outgrows sqrt(n) and gets folded.
    st.tuples(st.just("update"), st.dictionaries(_keys, _ints, min_size=8, max_size=20)),
    st.tuples(st.just("append"), _some(_ints)),
    st.tuples(st.just("extend"), _some(st.lists(_ints, max_size=3))),
    st.tuples(st.just("increment"), _some(_ints)),
    st.tuples(st.just("wipe_keep"), st.tuples(st.lists(_keys, max_size=20), st.booleans())),
    st.tuples(st.just("wipe_delete"), st.lists(_keys, max_size=6)),
    st.tuples(st.just("delete"), _keys),
    st.tuples(st.just("merge"), _some(_ints)),
    st.tuples(st.just("merge_state"), _some(_ints)),
)
# -1 derives from the newest state; any other number picks an earlier one, so lists branch.
_sources = st.one_of(st.just(-1), st.integers(0, 60))


def _apply_to_model(model: dict, name: str, arg):
    """The expected dict after the operation, or the key the operation must fail on."""
    if name in ("update", "merge", "merge_state"):
        return {**model, **arg}, None
    if name in ("append", "extend"):
        new = dict(model)
        for key, value in arg.items():
            items = [value] if name == "append" else list(value)
            current = model.get(key, MISSING)
            if current is MISSING:
                new[key] = items
            elif isinstance(current, list):
                new[key] = current + items
            else:
                return None, key
        return new, None
    if name == "increment":
        new = dict(model)
        for key, value in arg.items():
            current = model.get(key, 0)
            if isinstance(current, list):
                return None, key
            new[key] = current + value
        return new, None
    if name == "wipe_keep":
        keep, keep_base = arg
        return {k: v for k, v in model.items() if k in keep or (keep_base and k.startswith("base"))}, None
    if name == "wipe_delete":
        return {k: v for k, v in model.items() if k not in arg}, None
    if name == "delete":
        return {k: v for k, v in model.items() if k != arg}, None
    raise AssertionError(name)


def _apply_to_state(state: State, name: str, arg) -> State:
    if name == "update":
        return state.update(**arg)
    if name == "append":
        return state.append(**arg)
    if name == "extend":
        return state.extend(**arg)
    if name == "increment":
        return state.increment(**arg)
    if name == "wipe_keep":
        keep, keep_base = arg
        return state.wipe(keep=[*keep, *(k for k in state if keep_base and k.startswith("base"))])
    if name == "wipe_delete":
        return state.wipe(delete=arg)
    if name == "delete":
        return state.wipe(delete=arg)
    if name == "merge":
        return state.merge(arg)
    if name == "merge_state":
        return state.merge(State(arg))
    raise AssertionError(name)


def _assert_matches(state: State, model: dict) -> None:
    assert state == model
    assert state.get_all() == model
    assert len(state) == len(model)
    assert sorted(state) == sorted(model)
    assert len(state.keys_list()) == len(set(state.keys_list()))
    for key in _POOL:
        assert (key in state) == (key in model)
        assert state.get(key, MISSING) == model.get(key, MISSING)


@settings(max_examples=200, deadline=None)
@given(
    initial=st.dictionaries(_keys, st.one_of(_ints, st.lists(_ints, max_size=2)), max_size=10),
    base_size=st.integers(0, 400),
    steps=st.lists(st.tuples(_sources, _operations), min_size=1, max_size=50),
)
def test_state_random_operations_match_a_dict_model(initial, base_size, steps):
    """Random update/append/extend/increment/wipe/merge/delete sequences match a dict, and no earlier state changes."""
    start = {**{f"base{i}": i for i in range(base_size)}, **initial}
    states = [State(start)]
    models = [dict(start)]
    for source, (name, arg) in steps:
        index = -1 if source == -1 else source % len(states)
        state, model = states[index], models[index]
        expected, failing_key = _apply_to_model(model, name, arg)
        if failing_key is not None:
            with pytest.raises(TypeError) as info:
                _apply_to_state(state, name, arg)
            assert f"state key {failing_key!r}" in str(info.value)
            assert state == model
            continue
        new = _apply_to_state(state, name, arg)
        _assert_matches(new, expected)
        assert (new == state) == (expected == model)
        states.append(new)
        models.append(expected)
        for old, old_model in zip(states, models, strict=True):
            assert old == old_model
    for old, old_model in zip(states, models, strict=True):
        _assert_matches(old, old_model)
        assert pickle.loads(pickle.dumps(old)) == old_model


def test_state_increment_refuses_a_non_number_delta_naming_the_key():
    """increment(n="x") names the key and the bad delta instead of a bare operand error."""
    with pytest.raises(TypeError, match=r"'n': the increment is str 'x', not a number"):
        State(n=1).increment(n="x")


def test_state_increment_accepts_any_number_type():
    """Fractions (and numpy scalars) count as numbers, like ints and floats."""
    from fractions import Fraction

    assert State(n=Fraction(1, 2)).increment(n=1)["n"] == Fraction(3, 2)


def test_state_missing_key_message_stays_short_on_big_states():
    """The known-keys list in a message is cut after 20 names with a count of the rest."""
    state = State({f"k{i:05d}": i for i in range(10_000)})
    with pytest.raises(KeyError) as info:
        state["nope"]
    assert "and 9980 more" in str(info.value) and len(str(info.value)) < 600
