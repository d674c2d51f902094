"""TensorBoard: the epoch's logs as TensorBoard scalars, in TensorFlow's event-file format (written here,
without TensorFlow).

As Keras 3 lays them out: ``<log_dir>/train`` gets ``epoch_<name>`` for each training log and
``epoch_learning_rate``, ``<log_dir>/validation`` gets ``epoch_<name>`` for each ``val_<name>`` log, at step
``epoch``; with ``update_freq='batch'`` (or every N batches) ``batch_<name>`` too, at the optimizer's step;
``evaluate`` adds ``evaluation_<name>_vs_iterations`` to ``validation``. Weight histograms, graphs, images,
embeddings and profiling are not written (a warning says so when asked for).

An event file is a sequence of TFRecords (length, masked CRC-32C of the length, the bytes, masked CRC-32C of
the bytes) each holding an ``Event`` protocol buffer: the first one ``file_version``, then one per scalar
(``wall_time``, ``step``, ``summary.value[tag, simple_value]``). The encoder is the few lines below.
"""
import os
import socket
import struct
import time
import warnings

from gradsmith.callbacks.callback import Callback

__all__ = ["TensorBoard"]


def _crc32c_table():
    table = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table.append(c)
    return table


_CRC_TABLE = _crc32c_table()


def crc32c(data):
    """CRC-32C (Castagnoli), as TFRecord frames use it."""
    crc = 0xFFFFFFFF
    for b in data:
        crc = _CRC_TABLE[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def _masked_crc(data):
    crc = crc32c(data)
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def _varint(n):
    out = bytearray()
    n &= (1 << 64) - 1  # int64 as protobuf encodes it (two's complement)
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _field(number, wire_type, payload):
    return _varint(number << 3 | wire_type) + payload


def _bytes_field(number, data):
    return _field(number, 2, _varint(len(data)) + data)


def event_bytes(wall_time, step=None, file_version=None, scalars=()):
    """An ``Event`` message: wall_time (1, double), step (2, int64), file_version (3, string), summary (5) of
    values (1) each with tag (1, string) and simple_value (2, float)."""
    out = _field(1, 1, struct.pack("<d", wall_time))
    if step is not None:
        out += _field(2, 0, _varint(int(step)))
    if file_version is not None:
        out += _bytes_field(3, file_version.encode())
    if scalars:
        values = b"".join(_bytes_field(1, _bytes_field(1, tag.encode()) + _field(2, 5, struct.pack("<f", value)))
                          for tag, value in scalars)
        out += _bytes_field(5, values)
    return out


def record_bytes(data):
    """One TFRecord frame around ``data``."""
    length = struct.pack("<Q", len(data))
    return length + struct.pack("<I", _masked_crc(length)) + data + struct.pack("<I", _masked_crc(data))


class _EventWriter:
    """One event file in ``directory``, opened on first use, flushed after each write."""

    _count = 0

    def __init__(self, directory):
        self.directory = directory
        self._file = None

    def write(self, step, scalars):
        if self._file is None:
            os.makedirs(self.directory, exist_ok=True)
            _EventWriter._count += 1
            name = f"events.out.tfevents.{int(time.time())}.{socket.gethostname()}.{os.getpid()}." \
                   f"{_EventWriter._count}.v2"
            self._file = open(os.path.join(self.directory, name), "wb")
            self._file.write(record_bytes(event_bytes(time.time(), file_version="brain.Event:2")))
        self._file.write(record_bytes(event_bytes(time.time(), step=step, scalars=scalars)))
        self._file.flush()

    def close(self):
        if self._file is not None:
            self._file.close()
            self._file = None


def _scalar(value):
    try:
        return float(value)
    except (TypeError, ValueError):
        return None  # an array-valued metric (F1Score per class, ...): not a scalar


class TensorBoard(Callback):
    """Keras's TensorBoard callback, scalars only (see the module's docstring)."""

    def __init__(self, log_dir="logs", histogram_freq=0, write_graph=True, write_images=False,
                 write_steps_per_second=False, update_freq="epoch", profile_batch=0, embeddings_freq=0,
                 embeddings_metadata=None):
        super().__init__()
        self.log_dir = os.fspath(log_dir)
        if update_freq != "epoch" and update_freq != "batch" and not (
                isinstance(update_freq, int) and not isinstance(update_freq, bool) and update_freq >= 1):
            raise ValueError(f"TensorBoard: update_freq must be 'epoch', 'batch' or a positive integer, got "
                             f"{update_freq!r}")
        self.update_freq = 1 if update_freq == "batch" else update_freq
        self.histogram_freq, self.write_images, self.embeddings_freq = histogram_freq, write_images, embeddings_freq
        if histogram_freq or write_images or embeddings_freq or profile_batch:
            warnings.warn("TensorBoard: gradsmith writes scalars only (no histograms, images, embeddings or "
                          "profiles)", stacklevel=2)
        self._train = _EventWriter(os.path.join(self.log_dir, "train"))
        self._validation = _EventWriter(os.path.join(self.log_dir, "validation"))
        self._batches = 0
        if self.update_freq != "epoch":  # only then a batch hook (without one, fit runs whole epochs in C++)
            self.on_train_batch_end = self._write_batch

    def _learning_rate(self):
        optimizer = getattr(self.model, "optimizer", None)
        if optimizer is None:
            return None
        current = getattr(optimizer, "_current_learning_rate", None)
        return _scalar(current() if callable(current) else getattr(optimizer, "learning_rate", None))

    def _write_batch(self, batch, logs=None):
        self._batches += 1
        if self._batches % self.update_freq == 0:
            step = int(getattr(self.model.optimizer, "iterations", self._batches))
            scalars = [(f"batch_{k}", v) for k, v in ((k, _scalar(v)) for k, v in (logs or {}).items())
                       if v is not None]
            if scalars:
                self._train.write(step, scalars)

    def on_epoch_end(self, epoch, logs=None):
        train, validation = [], []
        for key, value in (logs or {}).items():
            value = _scalar(value)
            if value is None:
                continue
            if key.startswith("val_"):
                validation.append((f"epoch_{key[4:]}", value))
            else:
                train.append((f"epoch_{key}", value))
        lr = self._learning_rate()
        if lr is not None and not any(tag == "epoch_learning_rate" for tag, _ in train):
            train.append(("epoch_learning_rate", lr))
        if train:
            self._train.write(epoch, train)
        if validation:
            self._validation.write(epoch, validation)

    def on_test_end(self, logs=None):
        step = int(getattr(getattr(self.model, "optimizer", None), "iterations", 0) or 0)
        scalars = [(f"evaluation_{k}_vs_iterations", v) for k, v in ((k, _scalar(v)) for k, v in (logs or {}).items())
                   if v is not None]
        if scalars:
            self._validation.write(step, scalars)

    def on_train_end(self, logs=None):
        self._train.close()
        self._validation.close()
