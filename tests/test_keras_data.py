"""gradsmith.data.Dataset against tf.data's documented behaviour: element order and types,
batch shapes and remainders, buffer shuffling, map's calling convention, repeat / take
counts and cardinality."""
import collections

import numpy as np
import pytest

from gradsmith import data
from gradsmith.data import Dataset


def ints(ds):
    return [int(v) for v in ds]


# --------------------------------------------------------------------------- from_tensor_slices
def test_constants():
    assert data.AUTOTUNE == -1
    assert data.INFINITE_CARDINALITY == -1 and data.UNKNOWN_CARDINALITY == -2
    assert data.experimental.AUTOTUNE == -1


def test_from_array_yields_rows_in_order():
    x = np.arange(12, dtype=np.float32).reshape(4, 3)
    ds = Dataset.from_tensor_slices(x)
    rows = list(ds)
    assert len(rows) == 4 and len(ds) == 4 and ds.cardinality() == 4
    for i, r in enumerate(rows):
        assert isinstance(r, np.ndarray) and r.dtype == np.float32 and r.shape == (3,)
        np.testing.assert_array_equal(r, x[i])
    rows[0][:] = -1  # elements are copies: the source is untouched
    assert x[0, 0] == 0
    # 1-D: NumPy scalars, as tf's .numpy() gives them
    vals = list(Dataset.from_tensor_slices(np.array([1.5, 2.5], np.float64)))
    assert vals == [1.5, 2.5] and all(isinstance(v, np.float64) for v in vals)


def test_from_list_is_one_tensor_with_tf_dtypes():
    ds = Dataset.from_tensor_slices([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]])
    rows = list(ds)
    assert len(rows) == 3 and rows[1].tolist() == [3.0, 4.0] and rows[1].dtype == np.float32
    assert list(Dataset.from_tensor_slices([1, 2, 3]))[0].dtype == np.int32


def test_from_tuple_and_dict():
    x = np.arange(6).reshape(3, 2)
    y = np.array([10, 20, 30])
    elems = list(Dataset.from_tensor_slices((x, y)))
    assert all(type(e) is tuple and len(e) == 2 for e in elems)
    assert [(e[0].tolist(), int(e[1])) for e in elems] == [([0, 1], 10), ([2, 3], 20), ([4, 5], 30)]
    d = list(Dataset.from_tensor_slices({"a": x, "b": y}))
    assert isinstance(d[0], dict) and set(d[0]) == {"a", "b"}
    assert d[2]["a"].tolist() == [4, 5] and int(d[2]["b"]) == 30
    nested = list(Dataset.from_tensor_slices(({"a": x}, y)))
    assert nested[1][0]["a"].tolist() == [2, 3] and int(nested[1][1]) == 20
    Point = collections.namedtuple("Point", "x y")
    p = list(Dataset.from_tensor_slices(Point(x, y)))[0]
    assert isinstance(p, Point) and int(p.y) == 10


def test_from_tensor_slices_errors():
    with pytest.raises(ValueError, match="same size"):
        Dataset.from_tensor_slices((np.zeros(3), np.zeros(4)))
    with pytest.raises(ValueError, match="leading axis"):
        Dataset.from_tensor_slices(np.float32(1.0))


def test_re_iterable_and_truthy():
    ds = Dataset.from_tensor_slices(np.arange(5)).map(lambda v: v * 2)
    assert ints(ds) == ints(ds) == [0, 2, 4, 6, 8]
    empty = Dataset.from_tensor_slices(np.zeros((0, 2)))
    assert bool(empty) and len(empty) == 0 and list(empty) == []
    it = ds.as_numpy_iterator()
    assert int(next(it)) == 0


# --------------------------------------------------------------------------- batch
def test_batch_shapes_and_remainder():
    x = np.arange(20, dtype=np.float32).reshape(10, 2)
    y = np.arange(10)
    ds = Dataset.from_tensor_slices((x, y)).batch(4)
    batches = list(ds)
    assert [b[0].shape for b in batches] == [(4, 2), (4, 2), (2, 2)]
    assert [b[1].tolist() for b in batches] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    assert all(type(b) is tuple for b in batches)
    assert len(ds) == 3 and ds.cardinality() == 3
    dropped = Dataset.from_tensor_slices((x, y)).batch(4, drop_remainder=True)
    assert [b[1].tolist() for b in dropped] == [[0, 1, 2, 3], [4, 5, 6, 7]] and len(dropped) == 2
    assert len(Dataset.from_tensor_slices(y).batch(5, drop_remainder=True)) == 2
    assert len(Dataset.from_tensor_slices(y).batch(20)) == 1
    assert len(Dataset.from_tensor_slices(y).batch(20, drop_remainder=True)) == 0


def test_batch_dict_and_batch_of_batches():
    ds = Dataset.from_tensor_slices({"a": np.arange(5), "b": np.ones((5, 3))}).batch(2)
    b = next(iter(ds))
    assert b["a"].tolist() == [0, 1] and b["b"].shape == (2, 3)
    bb = list(Dataset.from_tensor_slices(np.arange(8)).batch(2).batch(2))
    assert bb[0].shape == (2, 2) and bb[1].tolist() == [[4, 5], [6, 7]]


def test_batches_are_fresh_arrays():
    x = np.arange(12, dtype=np.float32).reshape(6, 2)
    for ds in (Dataset.from_tensor_slices(x).batch(3),
               Dataset.from_tensor_slices(x).shuffle(6, seed=0).batch(3),
               Dataset.from_tensor_slices(x).map(lambda v: v).batch(3)):
        for b in ds:
            b *= 0
        assert x.sum() == 66


def test_batch_errors():
    with pytest.raises(ValueError):
        Dataset.from_tensor_slices(np.arange(3)).batch(0)
    ragged = Dataset.from_tensor_slices(np.arange(3)).map(lambda v: np.zeros(int(v) + 1))
    with pytest.raises(ValueError, match="shape"):
        list(ragged.batch(3))


def test_from_tensor_slices_batches_without_stacking(monkeypatch):
    # fit() iterates every epoch: slices of the source are gathered per batch, not stacked per element.
    def no_stack(_):
        raise AssertionError("stacked element by element")

    monkeypatch.setattr(data, "_stack", no_stack)
    x = np.random.default_rng(0).standard_normal((1000, 8)).astype(np.float32)
    y = np.arange(1000)
    for ds, total in ((Dataset.from_tensor_slices((x, y)).batch(32), 1000),
                      (Dataset.from_tensor_slices((x, y)).shuffle(1000, seed=1).batch(32), 1000),
                      (Dataset.from_tensor_slices((x, y)).shuffle(100, seed=1).batch(32).prefetch(data.AUTOTUNE),
                       1000),
                      (Dataset.from_tensor_slices((x, y)).repeat(2).shuffle(2000).take(1500).batch(32), 1500)):
        sizes = []
        for xb, yb in ds:
            np.testing.assert_array_equal(xb, x[yb])  # rows stay paired
            sizes.append(len(yb))
        assert sum(sizes) == total and len(sizes) == len(ds) == -(-total // 32)
    assert sorted(np.concatenate([yb for _, yb in Dataset.from_tensor_slices((x, y)).shuffle(
        100, seed=3).batch(64)]).tolist()) == list(range(1000))


# --------------------------------------------------------------------------- shuffle
def test_shuffle_is_a_permutation_and_deterministic_per_seed():
    n = 50
    a = Dataset.from_tensor_slices(np.arange(n)).shuffle(n, seed=42)
    b = Dataset.from_tensor_slices(np.arange(n)).shuffle(n, seed=42)
    pa, pb = [ints(a) for _ in range(3)], [ints(b) for _ in range(3)]
    assert pa == pb  # same seed: the same sequence of orders
    for p in pa:
        assert sorted(p) == list(range(n)) and p != list(range(n))
    assert pa[0] != pa[1] != pa[2]  # reshuffled each iteration by default
    c = Dataset.from_tensor_slices(np.arange(n)).shuffle(n, seed=43)
    assert ints(c) != pa[0]


def test_shuffle_without_reshuffle_repeats_its_order():
    ds = Dataset.from_tensor_slices(np.arange(30)).shuffle(30, seed=1, reshuffle_each_iteration=False)
    assert ints(ds) == ints(ds) and ints(ds) != list(range(30))
    unseeded = Dataset.from_tensor_slices(np.arange(30)).shuffle(30, reshuffle_each_iteration=False)
    assert ints(unseeded) == ints(unseeded)
    # repeat() after a reshuffling shuffle: every repetition is its own permutation
    r = ints(Dataset.from_tensor_slices(np.arange(20)).shuffle(20, seed=5).repeat(2))
    assert sorted(r[:20]) == sorted(r[20:]) == list(range(20)) and r[:20] != r[20:]
    r = ints(Dataset.from_tensor_slices(np.arange(20)).shuffle(20, seed=5, reshuffle_each_iteration=False)
             .repeat(2))
    assert r[:20] == r[20:]


def test_shuffle_buffer_semantics():
    n = 40
    assert ints(Dataset.from_tensor_slices(np.arange(n)).shuffle(1, seed=0)) == list(range(n))
    for buffer in (2, 5, 10):
        out = ints(Dataset.from_tensor_slices(np.arange(n)).shuffle(buffer, seed=buffer))
        assert sorted(out) == list(range(n))
        # a buffer of B: the k-th output is one of the first k + B inputs
        assert all(v < k + buffer for k, v in enumerate(out))
    with pytest.raises(ValueError):
        Dataset.from_tensor_slices(np.arange(3)).shuffle(0)


def test_shuffle_order_does_not_depend_on_the_pipeline_before_it():
    # The index fast path and the element-by-element path draw the same order.
    x = np.arange(37)
    for buffer in (5, 37, 100):
        direct = Dataset.from_tensor_slices(x).shuffle(buffer, seed=9)
        mapped = Dataset.from_tensor_slices(x).map(lambda v: v).shuffle(buffer, seed=9)
        for _ in range(2):
            assert ints(direct) == ints(mapped)
        assert ints(direct.batch(4).unbatch()) == ints(mapped.batch(4).unbatch())


def test_shuffle_keeps_tuple_components_together():
    x = np.arange(100) * 10
    y = np.arange(100)
    for xs, ys in Dataset.from_tensor_slices((x, y)).shuffle(30, seed=2):
        assert int(xs) == int(ys) * 10
    d = Dataset.from_tensor_slices({"x": x, "y": y}).shuffle(100, seed=1).batch(7)
    for b in d:
        assert (b["x"] == b["y"] * 10).all()


# --------------------------------------------------------------------------- map
def test_map_unpacks_tuples_like_tf_data():
    x = np.arange(6, dtype=np.float32).reshape(3, 2)
    y = np.array([0, 1, 2])
    ds = Dataset.from_tensor_slices((x, y)).map(lambda a, b: (a * 2, b + 1))
    out = list(ds)
    assert type(out[0]) is tuple and out[2][0].tolist() == [8.0, 10.0] and int(out[2][1]) == 3
    assert len(ds) == 3
    # a dict element is one argument; a returned list becomes a tuple
    d = Dataset.from_tensor_slices({"a": y}).map(lambda e: [e["a"], e["a"] * 2])
    assert list(d)[1] == (1, 2) and type(list(d)[1]) is tuple
    # a single-component element is passed as is
    assert ints(Dataset.from_tensor_slices(y).map(lambda v: v + 10)) == [10, 11, 12]
    # map over batches gets whole batches
    bsum = [v.tolist() for v in Dataset.from_tensor_slices((x, y)).batch(2).map(lambda a, b: a.sum(1) + b)]
    assert bsum == [[1.0, 6.0], [11.0]]
    with pytest.raises(TypeError):
        Dataset.from_tensor_slices(y).map(3)


def test_map_python_results_become_numpy():
    out = list(Dataset.from_tensor_slices(np.arange(2)).map(lambda v: (float(v), int(v))))
    assert isinstance(out[0][0], np.ndarray) and out[0][0].dtype == np.float32
    assert out[0][1].dtype == np.int32


# --------------------------------------------------------------------------- repeat / take / skip
def test_repeat_and_take_counts():
    base = Dataset.from_tensor_slices(np.arange(5))
    assert ints(base.repeat(3)) == list(range(5)) * 3 and len(base.repeat(3)) == 15
    assert base.repeat().cardinality() == data.INFINITE_CARDINALITY
    assert base.repeat(-1).cardinality() == data.INFINITE_CARDINALITY
    assert ints(base.repeat().take(12)) == [0, 1, 2, 3, 4] * 2 + [0, 1]
    assert base.repeat().take(12).cardinality() == 12
    assert ints(base.take(3)) == [0, 1, 2] and len(base.take(3)) == 3
    assert ints(base.take(10)) == list(range(5)) and len(base.take(10)) == 5
    assert ints(base.take(-1)) == list(range(5)) and len(base.take(-1)) == 5
    assert ints(base.take(0)) == [] and len(base.take(0)) == 0
    assert ints(base.repeat(0)) == []
    assert ints(base.skip(2)) == [2, 3, 4] and len(base.skip(2)) == 3
    assert ints(base.skip(9)) == [] and len(base.skip(-1)) == 0
    # batches run across repetitions, as tf.data's do
    assert [b.tolist() for b in base.repeat(2).batch(3)] == [[0, 1, 2], [3, 4, 0], [1, 2, 3], [4]]
    assert len(base.repeat(2).batch(3)) == 4
    assert base.repeat().batch(3).cardinality() == data.INFINITE_CARDINALITY
    # an empty dataset repeated forever is empty, not a hang
    assert list(Dataset.from_tensor_slices(np.zeros(0)).repeat()) == []


def test_cardinality_unknown_and_len_errors():
    base = Dataset.from_tensor_slices(np.arange(10))
    f = base.filter(lambda v: v % 2 == 0)
    assert ints(f) == [0, 2, 4, 6, 8]
    assert f.cardinality() == data.UNKNOWN_CARDINALITY
    assert f.batch(2).cardinality() == data.UNKNOWN_CARDINALITY
    assert f.take(2).cardinality() == data.UNKNOWN_CARDINALITY
    assert f.repeat().cardinality() == data.INFINITE_CARDINALITY
    with pytest.raises(TypeError, match="unknown"):
        len(f)
    with pytest.raises(TypeError, match="infinite"):
        len(base.repeat())
    assert base.cardinality().numpy() == 10  # tf code calls .numpy() on it
    assert data.experimental.cardinality(base) == 10
    assert base.prefetch(data.AUTOTUNE).cardinality() == 10


# --------------------------------------------------------------------------- the rest of the interface
def test_prefetch_cache_range_zip_concatenate_enumerate_unbatch():
    base = Dataset.from_tensor_slices(np.arange(4))
    assert ints(base.prefetch(2)) == [0, 1, 2, 3]
    assert ints(Dataset.range(3)) == [0, 1, 2] and ints(Dataset.range(2, 8, 3)) == [2, 5]
    z = Dataset.zip((base, base.map(lambda v: v * 10).take(3)))
    assert [(int(a), int(b)) for a, b in z] == [(0, 0), (1, 10), (2, 20)] and len(z) == 3
    c = base.concatenate(Dataset.range(2))
    assert ints(c) == [0, 1, 2, 3, 0, 1] and len(c) == 6
    assert [(int(i), int(v)) for i, v in base.enumerate(5)][:2] == [(5, 0), (6, 1)]
    assert ints(base.batch(3).unbatch()) == [0, 1, 2, 3]
    one = list(Dataset.from_tensors(np.ones((2, 2))))
    assert len(one) == 1 and one[0].shape == (2, 2)
    # cache after a shuffle freezes the first pass's order
    cached = base.shuffle(4, seed=0).cache()
    first = ints(cached)
    assert ints(cached) == first and sorted(first) == [0, 1, 2, 3]


def test_feeds_fit_through_the_data_adapter():
    from gradsmith import data_adapter

    x = np.arange(20, dtype=np.float32).reshape(10, 2)
    y = np.arange(10, dtype=np.float32)
    ds = Dataset.from_tensor_slices((x, y)).shuffle(10, seed=0).batch(4)
    batches = data_adapter.adapt(ds)
    assert batches.num_batches() == 3
    for _ in range(2):  # every epoch a full pass
        got = [(xb, yb, sw) for xb, yb, sw in batches]
        assert [len(yb) for _, yb, _ in got] == [4, 4, 2] and all(sw is None for *_, sw in got)
        assert sorted(np.concatenate([yb for _, yb, _ in got]).tolist()) == list(range(10))


def test_to_categorical_as_keras():
    from gradsmith.utils import to_categorical

    got = to_categorical([0, 2, 1])
    np.testing.assert_array_equal(got, [[1, 0, 0], [0, 0, 1], [0, 1, 0]])
    assert got.dtype == np.float64  # Keras 3 returns float64 for NumPy input
    assert to_categorical(np.array([[1], [0]]), 3).shape == (2, 3)  # a trailing 1 is dropped
    assert to_categorical(np.array([[1, 0], [2, 2]]), 4).shape == (2, 2, 4)
    np.testing.assert_array_equal(to_categorical([1.0, 0.0]), [[0, 1], [1, 0]])
    with pytest.raises(ValueError, match="outside"):
        to_categorical([0, 3], 3)
    with pytest.raises(ValueError, match="outside"):
        to_categorical([-1, 0])
    with pytest.raises(ValueError, match="whole numbers"):
        to_categorical([0.5])
    with pytest.raises(TypeError):
        to_categorical(["a"])


def test_normalize_as_keras():
    from gradsmith.utils import normalize

    np.testing.assert_allclose(normalize(np.array([[3.0, 4.0], [0.0, 0.0]])), [[0.6, 0.8], [0.0, 0.0]])
    # Keras 3.15's numbers for axis=0: norms down the columns [3, 1], applied along the rows
    np.testing.assert_allclose(normalize(np.array([[1.0, 1.0], [2.0, 0.0]]), axis=0, order=1),
                               [[1 / 3, 1 / 3], [2.0, 0.0]])
    with pytest.raises(ValueError, match="order"):
        normalize(np.ones(3), order=0)
