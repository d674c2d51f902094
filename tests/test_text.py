"""gradsmith.data's text pipeline: Vocabulary (text <-> ids, the out-of-vocabulary id) and next-token windows
(text_sequences, sequence_dataset), in the TensorFlow text-generation tutorial's layout. The ids and windows
marked TF were recorded with TensorFlow 2.21: StringLookup(vocabulary=sorted(set(text)), mask_token=None)
and Dataset.from_tensor_slices(ids).batch(11, drop_remainder=True).map(split_input_target)."""
import numpy as np
import pytest

import gradsmith as keras
from gradsmith import data

TEXT = "First Citizen:\nBefore we proceed any further, hear me speak.\n"
TF_IDS = [8, 15, 21, 22, 23, 2, 7, 15, 23, 15, 27, 12, 18, 5, 1, 6, 12, 13, 19, 21, 12, 2, 25, 12, 2, 20, 21, 19, 10,
          12, 12, 11, 2, 9, 18, 26, 2, 13, 24, 21, 23, 14, 12, 21, 3, 2, 14, 12, 9, 21, 2, 17, 12, 2, 22, 20, 12, 9,
          16, 4, 1]
TF_WINDOWS = [([8, 15, 21, 22, 23, 2, 7, 15, 23, 15], [15, 21, 22, 23, 2, 7, 15, 23, 15, 27]),
              ([12, 18, 5, 1, 6, 12, 13, 19, 21, 12], [18, 5, 1, 6, 12, 13, 19, 21, 12, 2])]


def test_character_vocabulary_as_tensorflows_string_lookup():
    vocab = data.Vocabulary.from_text(TEXT)
    assert vocab.get_vocabulary() == ["[UNK]"] + sorted(set(TEXT))
    assert len(vocab) == vocab.size == 28 and vocab.oov_id == 0
    ids = vocab.encode(TEXT)
    assert ids.dtype == np.int32 and ids.tolist() == TF_IDS
    assert vocab.encode("Fz!").tolist() == [8, 27, 0]  # '!' is not in the text
    assert vocab.decode(ids) == TEXT
    assert vocab.decode([8, 0, 27]) == "F[UNK]z"
    assert vocab.decode(np.array([[8.0, 27.0]])) == "Fz"
    with pytest.raises(ValueError, match=r"id 28 at index 1 is outside \[0, 28\)"):
        vocab.decode([1, 28])
    with pytest.raises(TypeError):
        vocab.decode([1.5])


def test_word_vocabulary():
    vocab = data.Vocabulary.from_text("the cat and the dog and the bird", level="word")
    assert vocab.get_vocabulary() == ["[UNK]", "the", "and", "bird", "cat", "dog"]  # by frequency, ties sorted
    ids = vocab.encode("the dog and a cat")
    assert ids.tolist() == [1, 5, 2, 0, 4]
    assert vocab.decode(ids) == "the dog and [UNK] cat"
    small = data.Vocabulary.from_text("the cat and the dog and the bird", level="word", max_tokens=3)
    assert small.get_vocabulary() == ["[UNK]", "the", "and"]
    lower = data.Vocabulary.from_text("The the THE cat", level="word", lower=True)
    assert lower.get_vocabulary() == ["[UNK]", "the", "cat"] and lower.encode("THE Cat").tolist() == [1, 2]


def test_vocabulary_checks_its_arguments():
    with pytest.raises(ValueError):
        data.Vocabulary(["a", "a"])
    with pytest.raises(ValueError):
        data.Vocabulary(["ab"])
    with pytest.raises(ValueError):
        data.Vocabulary(["a"], level="sentence")
    with pytest.raises(TypeError):
        data.Vocabulary.from_text(b"bytes")


def test_windows_as_the_tensorflow_tutorial():
    inputs, targets = data.text_sequences(np.array(TF_IDS, np.int32), 10)
    assert inputs.shape == targets.shape == (5, 10)  # 61 ids: 5 chunks of 11, the rest dropped
    for k, (x, y) in enumerate(TF_WINDOWS):
        assert inputs[k].tolist() == x and targets[k].tolist() == y
    np.testing.assert_array_equal(inputs[:, 1:], targets[:, :-1])
    x, y = data.split_input_target(np.arange(5))
    assert x.tolist() == [0, 1, 2, 3] and y.tolist() == [1, 2, 3, 4]
    overlapping, _ = data.text_sequences(np.arange(20), 4, stride=1)
    assert overlapping.shape == (16, 4) and overlapping[3].tolist() == [3, 4, 5, 6]
    assert data.text_sequences(np.arange(3), 4)[0].shape == (0, 4)


def test_sequence_dataset_shuffles_batches_and_splits():
    ids = np.arange(1000) % 37
    train, val = data.sequence_dataset(ids, 9, batch_size=8, shuffle=True, seed=1, validation_split=0.2)
    inputs, targets = data.text_sequences(ids, 9)
    assert len(inputs) == 100
    tx = np.concatenate([x for x, _ in train])
    vx = np.concatenate([x for x, _ in val])
    assert tx.shape == (80, 9) and vx.shape == (20, 9)
    np.testing.assert_array_equal(vx, inputs[80:])  # the last chunks validate, unshuffled
    assert sorted(map(tuple, tx.tolist())) == sorted(map(tuple, inputs[:80].tolist()))
    assert not np.array_equal(tx, inputs[:80])  # shuffled
    again = np.concatenate([x for x, _ in data.sequence_dataset(ids, 9, batch_size=8, shuffle=True, seed=1,
                                                                validation_split=0.2)[0]])
    np.testing.assert_array_equal(again, tx)  # deterministic for a seed
    for x, y in train:
        np.testing.assert_array_equal(x[:, 1:], y[:, :-1])


def test_a_next_character_model_trains_on_the_pipeline():
    text = "hello world, hello gradsmith. " * 20
    vocab = data.Vocabulary.from_text(text)
    train, val = data.sequence_dataset(vocab.encode(text), 12, batch_size=8, shuffle=True, seed=0,
                                       validation_split=0.25)
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((12,), dtype="int32"), keras.layers.Embedding(len(vocab), 16),
                              keras.layers.Dense(len(vocab))])
    model.compile(optimizer=keras.optimizers.Adam(0.02),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
    history = model.fit(train, validation_data=val, epochs=5, verbose=0).history
    assert model._plan is not None, model._plan_reason
    assert history["loss"][-1] < history["loss"][0] and history["accuracy"][-1] > 0.5
    logits = model.predict(vocab.encode("hello world,")[None], verbose=0)
    assert logits.shape == (1, 12, len(vocab))
    # without context a step sees its own character only: h -> e, e -> l, w -> o, r -> l, d -> ,
    assert vocab.decode(np.argmax(logits[0, [0, 1, 6, 8, 10]], axis=-1)) == "elol,"
