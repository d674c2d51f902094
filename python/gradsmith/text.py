"""Text to token ids and back, and next-token training pairs: what a text-generation program needs.

    vocab = gradsmith.data.Vocabulary.from_text(text)           # characters (level="word" for words)
    ids = vocab.encode(text)                                    # np.int32 ids
    train, val = gradsmith.data.sequence_dataset(ids, 100, batch_size=64, shuffle=10000, seed=0,
                                                 validation_split=0.1)
    model.fit(train, validation_data=val, epochs=10)            # inputs (64, 100), targets (64, 100)
    vocab.decode(ids[:50])                                      # back to text

The layout is the TensorFlow text-generation tutorial's: the ids are cut into chunks of ``sequence_length
+ 1`` and each chunk gives ``input = chunk[:-1]``, ``target = chunk[1:]`` (``split_input_target``), so the
target at step t is the token after input step t. The vocabulary is laid out as that tutorial's
``StringLookup(vocabulary=sorted(set(text)), mask_token=None)``: the out-of-vocabulary token ``'[UNK]'`` is id
0 and the tokens follow from id 1, so ``len(vocab)`` (the Embedding's ``input_dim`` and the last Dense's
units) counts it.
"""
import collections
import re

import numpy as np

__all__ = ["Vocabulary", "split_input_target", "text_sequences"]

_LEVELS = ("char", "word")


class Vocabulary:
    """Tokens <-> ids. ``tokens`` (distinct strings, in id order) get ids 1, 2, ...; id 0 is ``oov_token``,
    which every token not in the vocabulary encodes to. ``level='char'`` reads a text as its characters,
    ``'word'`` as its whitespace-separated words (``lower=True`` lower-cases first); decode joins characters
    with nothing and words with one space."""

    def __init__(self, tokens, level="char", oov_token="[UNK]", lower=False):
        if level not in _LEVELS:
            raise ValueError(f"Vocabulary: level must be one of {_LEVELS}, got {level!r}")
        if not isinstance(oov_token, str):
            raise TypeError(f"Vocabulary: oov_token must be a string, got {oov_token!r}")
        tokens = list(tokens)
        for t in tokens:
            if not isinstance(t, str):
                raise TypeError(f"Vocabulary: tokens must be strings, got {t!r}")
            if level == "char" and len(t) != 1:
                raise ValueError(f"Vocabulary: a character vocabulary holds single characters, got {t!r}")
        if len(set(tokens)) != len(tokens):
            raise ValueError("Vocabulary: the tokens must be distinct")
        if oov_token in tokens:
            raise ValueError(f"Vocabulary: the out-of-vocabulary token {oov_token!r} is also a token")
        self.level, self.oov_token, self.lower = level, oov_token, bool(lower)
        self._tokens = [oov_token] + tokens
        self._ids = {t: i for i, t in enumerate(self._tokens)}

    @classmethod
    def from_text(cls, text, level="char", max_tokens=None, oov_token="[UNK]", lower=False):
        """The vocabulary of ``text``: characters in sorted order (the tutorial's ``sorted(set(text))``);
        words by frequency, most frequent first, ties in sorted order. ``max_tokens`` caps the size,
        ``'[UNK]'`` included (the rarest tokens are left out)."""
        if not isinstance(text, str):
            raise TypeError(f"Vocabulary.from_text: expected a str, got {type(text).__name__}")
        if level not in _LEVELS:
            raise ValueError(f"Vocabulary: level must be one of {_LEVELS}, got {level!r}")
        pieces = _split(text.lower() if lower else text, level)
        if level == "char":
            tokens = sorted(set(pieces))
            if max_tokens is not None:
                counts = collections.Counter(pieces)
                keep = set(sorted(tokens, key=lambda t: (-counts[t], t))[:max(int(max_tokens) - 1, 0)])
                tokens = [t for t in tokens if t in keep]
        else:
            counts = collections.Counter(pieces)
            tokens = sorted(counts, key=lambda t: (-counts[t], t))
            if max_tokens is not None:
                tokens = tokens[:max(int(max_tokens) - 1, 0)]
        tokens = [t for t in tokens if t != oov_token]
        return cls(tokens, level=level, oov_token=oov_token, lower=lower)

    def __len__(self):
        return len(self._tokens)

    @property
    def size(self):
        """The number of ids, the out-of-vocabulary id included (an Embedding's ``input_dim``)."""
        return len(self._tokens)

    @property
    def oov_id(self):
        return 0

    def get_vocabulary(self):
        """Every token in id order, ``oov_token`` first (as Keras's StringLookup.get_vocabulary())."""
        return list(self._tokens)

    def token_to_id(self, token):
        return self._ids.get(token, 0)

    def id_to_token(self, i):
        return self._tokens[self._check_ids(np.asarray([i]))[0]]

    def encode(self, text):
        """``text`` (a str) as np.int32 ids, one per character or word; unknown tokens give 0."""
        if not isinstance(text, str):
            raise TypeError(f"Vocabulary.encode: expected a str, got {type(text).__name__}")
        pieces = _split(text.lower() if self.lower else text, self.level)
        return np.fromiter((self._ids.get(p, 0) for p in pieces), dtype=np.int32, count=len(pieces))

    def decode(self, ids):
        """ids (any integer array-like, or whole-number floats) back to a str; id 0 gives ``oov_token``."""
        flat = self._check_ids(np.asarray(ids).reshape(-1))
        sep = "" if self.level == "char" else " "
        return sep.join(self._tokens[i] for i in flat)

    def _check_ids(self, a):
        if a.dtype.kind not in "iuf" or (a.dtype.kind == "f" and not np.all(a == np.floor(a))):
            raise TypeError(f"Vocabulary.decode: expected integer ids, got dtype {a.dtype}")
        bad = np.flatnonzero((a < 0) | (a >= len(self._tokens)))
        if bad.size:
            raise ValueError(f"Vocabulary.decode: id {a[bad[0]]} at index {int(bad[0])} is outside "
                             f"[0, {len(self._tokens)})")
        return a.astype(np.int64)

    def __repr__(self):
        return f"<Vocabulary level={self.level!r} size={len(self)}>"


def _split(text, level):
    return list(text) if level == "char" else re.findall(r"\S+", text)


def split_input_target(sequence):
    """``(sequence[:-1], sequence[1:])`` along the last axis: the input and its next-token target."""
    s = np.asarray(sequence)
    return s[..., :-1], s[..., 1:]


def text_sequences(ids, sequence_length, stride=None):
    """(inputs, targets), each (n, sequence_length): chunks of ``sequence_length + 1`` consecutive ids, split
    by ``split_input_target``. ``stride`` (default ``sequence_length + 1``: the tutorial's non-overlapping
    chunks, a remainder shorter than a chunk dropped) is the step between chunk starts."""
    a = np.asarray(ids)
    if a.ndim != 1 or a.dtype.kind not in "iu":
        raise ValueError(f"text_sequences: ids must be a 1-D integer array, got shape {a.shape} dtype {a.dtype}")
    if isinstance(sequence_length, bool) or not isinstance(sequence_length, (int, np.integer)) or sequence_length < 1:
        raise ValueError(f"text_sequences: sequence_length must be a positive integer, got {sequence_length!r}")
    chunk = int(sequence_length) + 1
    stride = chunk if stride is None else int(stride)
    if stride < 1:
        raise ValueError(f"text_sequences: stride must be a positive integer, got {stride!r}")
    n = 0 if len(a) < chunk else (len(a) - chunk) // stride + 1
    starts = np.arange(n) * stride
    chunks = a[starts[:, None] + np.arange(chunk)[None, :]] if n else np.zeros((0, chunk), a.dtype)
    return split_input_target(chunks)
