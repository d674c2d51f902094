"""Keras 3's text preprocessing layers: TextVectorization (strings to token ids) and StringLookup (tokens to ids
and back), with Keras's vocabulary order, special tokens, standardization and padding.

They run on the data, in NumPy and Python, before a model (``ids = vectorize(texts)``, or in a
``Dataset.map``): gradsmith's models take numbers, so they are not layers of a model. The vocabulary that
``adapt`` learns is ordered as Keras orders it: by count, most frequent first, ties by the token itself in
reverse order of code points (Keras sorts the UTF-8 bytes, which orders as the code points do).
"""
import collections
import re

import numpy as np

from gradsmith.layers.base import Layer

__all__ = ["StringLookup", "TextVectorization"]

# Keras's punctuation for "strip_punctuation" (the regex TextVectorization removes).
_PUNCTUATION = re.compile(r'[!"#$%&()\*\+,-\./:;<=>?@\[\\\]^_`{|}~\']')
# Keras lowercases and splits as TensorFlow's string ops do: ASCII letters only, ASCII whitespace only.
_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")
_WHITESPACE = re.compile(r"[ \t\n\r\v\f]+")
_STANDARDIZE = (None, "lower_and_strip_punctuation", "lower", "strip_punctuation")
_SPLIT = (None, "whitespace", "character")


def _strings(data, what):
    """A list of Python strings from a string, a list / array of strings or bytes (UTF-8), or a Dataset of
    them; (the list, whether one string was given)."""
    if isinstance(data, (str, bytes)):
        return [_text(data, what)], True
    if isinstance(data, np.ndarray):
        if data.ndim == 2 and data.shape[1] == 1:
            data = data[:, 0]
        if data.ndim != 1:
            raise ValueError(f"{what}: expected a 1-D array of strings, got shape {data.shape}")
    try:
        items = list(data)
    except TypeError:
        raise TypeError(f"{what}: expected strings, got {type(data).__name__}") from None
    out = []
    for item in items:
        if isinstance(item, (list, tuple, np.ndarray)) and not isinstance(item, (str, bytes)):
            out.extend(_strings(item, what)[0])  # a Dataset's batches
        else:
            out.append(_text(item, what))
    return out, False


def _text(value, what):
    if isinstance(value, (bytes, np.bytes_)):
        return bytes(value).decode("utf-8")
    if isinstance(value, (str, np.str_)):
        return str(value)
    raise TypeError(f"{what}: expected strings, got {type(value).__name__} {value!r:.50}")


def _ordered_vocabulary(counts, limit):
    """Keras's order of learned tokens: count descending, then the token descending."""
    tokens = sorted(counts, key=lambda t: (counts[t], t), reverse=True)
    return tokens if limit is None else tokens[:max(limit, 0)]


def _check_choice(value, choices, what):
    if callable(value):
        raise NotImplementedError(f"{what}: a callable is not supported; give one of {choices}")
    if value not in choices:
        raise ValueError(f"{what} must be one of {choices}, got {value!r}")
    return value


class StringLookup(Layer):
    """Tokens (strings) to integer ids, or back with ``invert=True``: ``StringLookup(vocabulary=list("abc"),
    mask_token=None)``. Ids: the mask token (when given) 0, then ``num_oov_indices`` out-of-vocabulary ids,
    then the vocabulary; an unknown token maps to the OOV id (``oov_token`` when inverting)."""

    def __init__(self, max_tokens=None, num_oov_indices=1, mask_token=None, oov_token="[UNK]", vocabulary=None,
                 idf_weights=None, invert=False, output_mode="int", pad_to_max_tokens=False, sparse=False,
                 encoding="utf-8", name=None, **kwargs):
        kwargs.pop("vocabulary_size", None)
        kwargs.pop("oov_method", None)
        kwargs.pop("salt", None)
        super().__init__(name=name, **kwargs)
        if max_tokens is not None and (isinstance(max_tokens, bool) or not isinstance(max_tokens, int)
                                       or max_tokens < 1):
            raise ValueError(f"StringLookup: max_tokens must be None or a positive integer, got {max_tokens!r}")
        if num_oov_indices != 1:
            raise NotImplementedError(f"StringLookup: num_oov_indices={num_oov_indices!r} is not supported (only 1)")
        if output_mode != "int" or idf_weights is not None or sparse or pad_to_max_tokens:
            raise NotImplementedError("StringLookup: only output_mode='int' is supported")
        if encoding != "utf-8":
            raise ValueError(f"StringLookup: only encoding='utf-8' is supported, got {encoding!r}")
        self.max_tokens, self.num_oov_indices = max_tokens, 1
        self.mask_token = None if mask_token is None else _text(mask_token, "StringLookup: mask_token")
        self.oov_token = _text(oov_token, "StringLookup: oov_token")
        self.invert, self.output_mode = bool(invert), output_mode
        self._vocabulary = None
        if vocabulary is not None:
            self.set_vocabulary(vocabulary)

    # -- vocabulary ------------------------------------------------------------------------------------------
    def _special(self):
        return ([self.mask_token] if self.mask_token is not None else []) + [self.oov_token]

    def set_vocabulary(self, vocabulary):
        """The tokens after the special ones, in order (a list, or a list that starts with the special tokens,
        as ``get_vocabulary`` returns it)."""
        tokens, _ = _strings(vocabulary, "StringLookup: vocabulary")
        special = self._special()
        if tokens[:len(special)] == special:
            tokens = tokens[len(special):]
        seen = set()
        for t in tokens:
            if t in seen or t in special:
                raise ValueError(f"StringLookup: the vocabulary repeats {t!r} (or holds a special token)")
            seen.add(t)
        self._vocabulary = list(tokens)
        self._index = {t: i + len(special) for i, t in enumerate(tokens)}
        self._table = np.array(self.get_vocabulary(), dtype=object)

    def adapt(self, data, steps=None):
        """Learn the vocabulary from ``data``'s tokens (Keras's order, up to ``max_tokens`` in all)."""
        tokens, _ = _strings(data, "StringLookup.adapt")
        counts = collections.Counter(t for t in tokens if t not in self._special())
        limit = None if self.max_tokens is None else self.max_tokens - len(self._special())
        self.set_vocabulary(_ordered_vocabulary(counts, limit))

    def get_vocabulary(self, include_special_tokens=True):
        self._require_vocabulary()
        return (self._special() if include_special_tokens else []) + list(self._vocabulary)

    def vocabulary_size(self):
        self._require_vocabulary()
        return len(self._special()) + len(self._vocabulary)

    def _require_vocabulary(self):
        if self._vocabulary is None:
            raise ValueError(f"{type(self).__name__} {self.name!r} has no vocabulary yet: call adapt(data) or give "
                             "vocabulary=")

    # -- lookup ----------------------------------------------------------------------------------------------
    def __call__(self, x, training=False):
        self._require_vocabulary()
        if self.invert:
            ids = np.asarray(x)
            if ids.dtype.kind not in "iu":
                raise TypeError(f"StringLookup {self.name!r} (invert=True): expected integer ids, got dtype "
                                f"{ids.dtype}")
            size = len(self._table)
            oov = self._table[len(self._special()) - 1]
            safe = np.where((ids >= 0) & (ids < size), ids, 0)
            return np.where((ids >= 0) & (ids < size), self._table[safe], oov).astype(str)
        arr = np.asarray(x, dtype=object) if not isinstance(x, (str, bytes)) else np.asarray([x], dtype=object)
        oov = len(self._special()) - 1
        flat = [self._index.get(_text(t, f"StringLookup {self.name!r}"), oov)
                if self.mask_token is None or _text(t, "") != self.mask_token else 0 for t in arr.reshape(-1)]
        out = np.asarray(flat, np.int64).reshape(arr.shape)
        return out[0] if isinstance(x, (str, bytes)) else out

    def forward(self, x, training=False):
        raise TypeError(f"{type(self).__name__} {self.name!r} works on strings, before the model (gradsmith's "
                        "models take numbers): call it on the data, e.g. ids = layer(texts)")

    def get_config(self):
        return {**super().get_config(), "invert": self.invert, "max_tokens": self.max_tokens,
                "num_oov_indices": self.num_oov_indices, "oov_token": self.oov_token, "mask_token": self.mask_token,
                "output_mode": self.output_mode, "sparse": False, "pad_to_max_tokens": False, "idf_weights": None,
                "vocabulary": None if self._vocabulary is None else list(self._vocabulary),
                "vocabulary_size": None if self._vocabulary is None else self.vocabulary_size(),
                "encoding": "utf-8"}


class TextVectorization(Layer):
    """Strings to padded sequences of token ids (``output_mode='int'``), or to multi-hot / count vectors:
    ``standardize`` (lowercase, strip Keras's punctuation), ``split`` (whitespace or characters), then each
    token's id (lowercasing and whitespace are ASCII's, as TensorFlow's string ops that Keras uses): 0 padding, 1 ``[UNK]`` (no padding id in the count modes: ``[UNK]`` is 0), then the vocabulary that ``adapt`` learns (at most ``max_tokens`` ids
    in all). ``output_sequence_length`` pads or cuts every sequence to that length; without it a batch is
    padded to its longest sequence."""

    def __init__(self, max_tokens=None, standardize="lower_and_strip_punctuation", split="whitespace", ngrams=None,
                 output_mode="int", output_sequence_length=None, pad_to_max_tokens=False, vocabulary=None,
                 idf_weights=None, sparse=False, ragged=False, encoding="utf-8", name=None, **kwargs):
        kwargs.pop("vocabulary_size", None)
        super().__init__(name=name, **kwargs)
        self.standardize = _check_choice(standardize, _STANDARDIZE, "TextVectorization: standardize")
        self.split = _check_choice(split, _SPLIT, "TextVectorization: split")
        self.output_mode = _check_choice(output_mode, ("int", "multi_hot", "count"), "TextVectorization: output_mode")
        if ngrams is not None:
            raise NotImplementedError("TextVectorization: ngrams are not supported")
        if idf_weights is not None or sparse or ragged:
            raise NotImplementedError("TextVectorization: idf_weights, sparse and ragged outputs are not supported")
        if encoding != "utf-8":
            raise ValueError(f"TextVectorization: only encoding='utf-8' is supported, got {encoding!r}")
        if output_sequence_length is not None and (isinstance(output_sequence_length, bool) or not isinstance(
                output_sequence_length, int) or output_sequence_length < 1):
            raise ValueError("TextVectorization: output_sequence_length must be None or a positive integer, got "
                             f"{output_sequence_length!r}")
        if output_sequence_length is not None and self.output_mode != "int":
            raise ValueError("TextVectorization: output_sequence_length is only for output_mode='int'")
        self.max_tokens, self.output_sequence_length = max_tokens, output_sequence_length
        self.pad_to_max_tokens = bool(pad_to_max_tokens)
        # As Keras: the padding id 0 is the empty token in 'int' mode; the count modes have no padding.
        self._lookup = StringLookup(max_tokens=max_tokens, mask_token="" if self.output_mode == "int" else None,
                                    vocabulary=vocabulary, name=f"{self.name}_lookup")

    def _tokens(self, text):
        if self.standardize in ("lower", "lower_and_strip_punctuation"):
            text = text.translate(_ASCII_LOWER)
        if self.standardize in ("strip_punctuation", "lower_and_strip_punctuation"):
            text = _PUNCTUATION.sub("", text)
        if self.split == "whitespace":
            return [t for t in _WHITESPACE.split(text) if t]
        if self.split == "character":
            return list(text)
        return [text]

    def adapt(self, data, batch_size=None, steps=None):
        """Learn the vocabulary from the texts in ``data`` (a list or array of strings, or a Dataset of them)."""
        texts, _ = _strings(data, "TextVectorization.adapt")
        counts = collections.Counter(t for text in texts for t in self._tokens(text) if t != "")
        limit = None if self.max_tokens is None else self.max_tokens - len(self._lookup._special())
        self._lookup.set_vocabulary(_ordered_vocabulary(counts, limit))

    def set_vocabulary(self, vocabulary, idf_weights=None):
        if idf_weights is not None:
            raise NotImplementedError("TextVectorization: idf_weights are not supported")
        self._lookup.set_vocabulary(vocabulary)

    def get_vocabulary(self, include_special_tokens=True):
        return self._lookup.get_vocabulary(include_special_tokens)

    def vocabulary_size(self):
        return self._lookup.vocabulary_size()

    def __call__(self, x, training=False):
        texts, single = _strings(x, f"TextVectorization {self.name!r}")
        ids = [self._lookup(self._tokens(t)) if self._tokens(t) else np.zeros(0, np.int64) for t in texts]
        if self.output_mode == "int":
            length = self.output_sequence_length or max([len(i) for i in ids] + [0])
            out = np.zeros((len(ids), length), np.int64)
            for row, seq in zip(out, ids):
                row[:min(len(seq), length)] = seq[:length]
        else:
            size = self.max_tokens if self.pad_to_max_tokens and self.max_tokens else self.vocabulary_size()
            out = np.zeros((len(ids), size), np.float32)
            for row, seq in zip(out, ids):
                np.add.at(row, seq, 1.0)
            if self.output_mode == "multi_hot":
                out = (out > 0).astype(np.float32)
        return out[0] if single else out

    def forward(self, x, training=False):
        raise TypeError(f"TextVectorization {self.name!r} works on strings, before the model (gradsmith's models "
                        "take numbers): call it on the data, e.g. ids = vectorize(texts)")

    def get_config(self):
        vocabulary = self._lookup._vocabulary
        return {**super().get_config(), "max_tokens": self.max_tokens, "standardize": self.standardize,
                "split": self.split, "ngrams": None, "output_mode": self.output_mode,
                "output_sequence_length": self.output_sequence_length, "pad_to_max_tokens": self.pad_to_max_tokens,
                "sparse": False, "ragged": False, "vocabulary": None if vocabulary is None else list(vocabulary),
                "idf_weights": None, "encoding": "utf-8",
                "vocabulary_size": None if vocabulary is None else self.vocabulary_size()}
