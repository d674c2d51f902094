"""TextVectorization and StringLookup against Keras 3 (tests/data/make_keras_text_fixtures.py, TensorFlow
backend): the vocabulary adapt learns (order, ties, max_tokens), ids, padding, multi-hot and count vectors,
lookup and inversion; and what they refuse."""
import json
import os

import numpy as np
import pytest

from gradsmith.layers import StringLookup, TextVectorization

DATA = os.path.join(os.path.dirname(__file__), "data")


@pytest.fixture(scope="module")
def cases():
    with open(os.path.join(DATA, "keras_text_cases.json"), encoding="utf-8") as f:
        return json.load(f)


@pytest.mark.parametrize("i", range(9))
def test_text_vectorization_matches_keras(cases, i):
    case = cases["vectorization"][i]
    layer = TextVectorization(**case["kwargs"])
    layer.adapt(cases["corpus"])
    assert layer.get_vocabulary() == case["vocabulary"]
    out = layer(cases["queries"])
    np.testing.assert_array_equal(out, np.asarray(case["output"]))
    assert out.dtype == (np.int64 if case["kwargs"].get("output_mode", "int") == "int" else np.float32)
    # the vocabulary given back gives the same ids, and the config carries it
    again = TextVectorization(**case["kwargs"], vocabulary=layer.get_vocabulary())
    np.testing.assert_array_equal(again(cases["queries"]), out)
    assert layer.get_config()["vocabulary_size"] == len(case["vocabulary"])


def test_string_lookup_matches_keras(cases):
    case = cases["lookup"]
    lookup = StringLookup(vocabulary=case["vocabulary"], mask_token=None)
    np.testing.assert_array_equal(lookup(list("the cat?!Z")), case["ids"])
    inverse = StringLookup(vocabulary=lookup.get_vocabulary(), invert=True, mask_token=None)
    n = len(case["vocabulary"])
    assert list(inverse(np.array([0, 1, 5, n, n + 3]))) == case["inverse"]
    adapted = StringLookup(max_tokens=6)
    adapted.adapt(list("abracadabra alakazam"))
    assert adapted.get_vocabulary() == case["adapted"]


def test_ids_round_trip_through_lookup_and_inversion():
    lookup = StringLookup(vocabulary=list("abc"))
    ids = lookup(np.array([["a", "b"], ["c", "z"]]))
    assert ids.shape == (2, 2) and ids[1, 1] == 0
    back = StringLookup(vocabulary=lookup.get_vocabulary(), invert=True)(ids)
    assert back.tolist() == [["a", "b"], ["c", "[UNK]"]]


def test_bad_arguments_and_data_are_refused():
    with pytest.raises(ValueError, match="standardize"):
        TextVectorization(standardize="upper")
    with pytest.raises(NotImplementedError, match="ngrams"):
        TextVectorization(ngrams=2)
    with pytest.raises(ValueError, match="no vocabulary"):
        TextVectorization()(["a b"])
    layer = TextVectorization()
    with pytest.raises(TypeError, match="expected strings"):
        layer.adapt([1, 2, 3])
    with pytest.raises(ValueError, match="repeats"):
        StringLookup(vocabulary=["a", "a"])
    with pytest.raises(TypeError, match="integer ids"):
        StringLookup(vocabulary=["a"], invert=True)(np.array([0.5]))
    with pytest.raises(TypeError, match="before the model"):
        layer.forward(np.zeros((1, 1)))
