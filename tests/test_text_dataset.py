"""text_dataset_from_directory: Keras's listing, labels and splits (the same index as the image folders), batches
of strings that TextVectorization and a model take, max_length, and what it refuses."""
import numpy as np
import pytest

import gradsmith as keras


@pytest.fixture()
def reviews(tmp_path):
    texts = {"neg": ["awful film", "boring and long", "bad acting", "worst plot ever"],
             "pos": ["great film", "loved it", "wonderful acting", "best plot ever", "a joy"]}
    for label, items in texts.items():
        (tmp_path / label).mkdir()
        for i, t in enumerate(items):
            (tmp_path / label / f"{i}.txt").write_text(t, encoding="utf-8")
    (tmp_path / "pos" / "skip.md").write_text("not a text file")
    return tmp_path


def test_batches_of_strings_and_labels(reviews, capsys):
    ds = keras.utils.text_dataset_from_directory(reviews, batch_size=4, seed=1)
    assert "Found 9 files belonging to 2 classes." in capsys.readouterr().out
    assert ds.class_names == ["neg", "pos"]
    batches = list(ds)
    assert [len(x) for x, _ in batches] == [4, 4, 1]
    texts = [t for x, _ in batches for t in x]
    labels = [int(v) for _, y in batches for v in y]
    assert sorted(texts) == sorted(["awful film", "boring and long", "bad acting", "worst plot ever", "great film",
                                    "loved it", "wonderful acting", "best plot ever", "a joy"])
    for t, lab in zip(texts, labels):
        assert (t in ("great film", "loved it", "wonderful acting", "best plot ever", "a joy")) == (lab == 1)
    assert batches[0][1].dtype == np.int32


def test_splits_max_length_and_a_model_trains(reviews):
    train, val = keras.utils.text_dataset_from_directory(reviews, batch_size=2, seed=3, validation_split=0.34,
                                                         subset="both", max_length=5, label_mode="binary")
    vectorize = keras.layers.TextVectorization(max_tokens=30, output_sequence_length=3)
    vectorize.adapt(train.map(lambda x, y: x))
    first = next(iter(train))
    assert all(len(t) <= 5 for t in first[0]) and first[1].shape == (2, 1)
    model = keras.Sequential([keras.Input((3,), dtype="int64"), keras.layers.Embedding(30, 4),
                              keras.layers.GlobalAveragePooling1D(), keras.layers.Dense(1, activation="sigmoid")])
    model.compile("adam", "binary_crossentropy")
    model.fit(train.map(lambda x, y: (vectorize(x), y)), validation_data=val.map(lambda x, y: (vectorize(x), y)),
              epochs=2, verbose=0)
    assert sum(len(x) for x, _ in train) + sum(len(x) for x, _ in val) == 9


def test_refusals(reviews, tmp_path):
    with pytest.raises(ValueError, match="label_mode"):
        keras.utils.text_dataset_from_directory(reviews, label_mode="sparse")
    with pytest.raises(ValueError, match="seed"):
        keras.utils.text_dataset_from_directory(reviews, validation_split=0.2, subset="training")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ValueError, match="No text files"):
        keras.utils.text_dataset_from_directory(empty)
