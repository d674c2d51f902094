"""The TensorBoard callback's event files: TFRecord frames with valid CRC-32C and Event messages, read back by a
small independent parser here; Keras's tags and directories; batch scalars only when asked for."""
import glob
import os
import struct

import numpy as np
import pytest

import gradsmith as keras
from gradsmith.callbacks import tensorboard


def _crc32c_bitwise(data):  # a second CRC-32C, bit by bit, to check the table-driven one
    crc = 0xFFFFFFFF
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 * (crc & 1))
    return crc ^ 0xFFFFFFFF


def _masked(crc):
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def _varint(buf, i):
    shift = value = 0
    while True:
        b = buf[i]
        i += 1
        value |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            return value, i


def _fields(buf):
    i, out = 0, []
    while i < len(buf):
        key, i = _varint(buf, i)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, i = _varint(buf, i)
        elif wire == 1:
            value, i = struct.unpack("<d", buf[i:i + 8])[0], i + 8
        elif wire == 5:
            value, i = struct.unpack("<f", buf[i:i + 4])[0], i + 4
        else:
            n, i = _varint(buf, i)
            value, i = buf[i:i + n], i + n
        out.append((number, value))
    return out


def _events(path):
    """[(step, {tag: value})] of an event file, every frame's CRCs checked."""
    with open(path, "rb") as f:
        data = f.read()
    i, events = 0, []
    while i < len(data):
        header = data[i:i + 8]
        (length,) = struct.unpack("<Q", header)
        assert struct.unpack("<I", data[i + 8:i + 12])[0] == _masked(_crc32c_bitwise(header))
        body = data[i + 12:i + 12 + length]
        assert struct.unpack("<I", data[i + 12 + length:i + 16 + length])[0] == _masked(_crc32c_bitwise(body))
        i += 16 + length
        fields = dict(_fields(body))
        scalars = {}
        for number, value in _fields(body):
            if number == 5:
                for _, v in _fields(value):
                    entry = dict(_fields(v))
                    scalars[entry[1].decode()] = entry[2]
        events.append((fields.get(2), fields.get(3), scalars))
    return events


def test_crc32c_is_castagnoli():
    assert tensorboard.crc32c(b"123456789") == 0xE3069283  # the standard check value
    assert tensorboard.crc32c(b"") == 0


def test_fit_writes_keras_scalars(tmp_path):
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((64, 4)).astype(np.float32), rng.integers(0, 2, 64)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
    callback = keras.callbacks.TensorBoard(log_dir=tmp_path / "logs")
    history = model.fit(x, y, epochs=3, validation_split=0.25, callbacks=[callback], verbose=0)
    assert model._plan is not None  # no batch hook: the epochs still run in the compiled step
    (train,) = glob.glob(str(tmp_path / "logs" / "train" / "events.out.tfevents.*"))
    (val,) = glob.glob(str(tmp_path / "logs" / "validation" / "events.out.tfevents.*"))
    events = _events(train)
    assert events[0][1] == b"brain.Event:2"
    epochs = [e for e in events if e[2]]
    assert [e[0] for e in epochs] == [0, 1, 2]
    for (step, _, scalars), loss, acc in zip(epochs, history.history["loss"], history.history["accuracy"]):
        assert scalars["epoch_loss"] == pytest.approx(loss, rel=1e-6)
        assert scalars["epoch_accuracy"] == pytest.approx(acc, rel=1e-6)
        assert scalars["epoch_learning_rate"] == pytest.approx(0.001)
    val_epochs = [e for e in _events(val) if "epoch_loss" in e[2]]
    assert [e[2]["epoch_loss"] for e in val_epochs] == pytest.approx(history.history["val_loss"], rel=1e-6)


def test_batch_scalars_when_asked(tmp_path):
    x, y = np.ones((32, 3), np.float32), np.ones((32, 1), np.float32)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    model.compile("sgd", "mse")
    model.fit(x, y, epochs=1, batch_size=8, verbose=0,
              callbacks=[keras.callbacks.TensorBoard(tmp_path, update_freq=2)])
    (train,) = glob.glob(os.path.join(tmp_path, "train", "events.out.tfevents.*"))
    steps = [e[0] for e in _events(train) if "batch_loss" in e[2]]
    assert steps == [2, 4]
    with pytest.raises(ValueError, match="update_freq"):
        keras.callbacks.TensorBoard(update_freq=0)
