"""Records tests/data/keras_text_cases.json with Keras 3's TextVectorization and StringLookup (TensorFlow
backend, which these layers need): vocabularies that adapt learns, ids, multi-hot and count vectors, inversion.

    KERAS_BACKEND=tensorflow python tests/data/make_keras_text_fixtures.py
"""
import json
import os

import keras
import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
CORPUS = ["The cat sat on the mat.", "the dog ate my homework!", "A cat, a dog; and THE end",
          "Ünïcode wörds: café, naïve — déjà vu?", "  spaces\tand\nnewlines  ", "", "x-y z's (a) [b] {c}"]
QUERIES = ["the cat ate a zebra", "end", "", "café déjà vu", "THE THE the"]


def main():
    cases = []
    for kwargs in [{}, {"max_tokens": 12}, {"max_tokens": 12, "output_sequence_length": 6},
                   {"standardize": "lower"}, {"standardize": None}, {"standardize": "strip_punctuation"},
                   {"split": "character", "output_sequence_length": 10}, {"output_mode": "multi_hot"},
                   {"output_mode": "count", "max_tokens": 8}]:
        tv = keras.layers.TextVectorization(**kwargs)
        tv.adapt(CORPUS)
        out = np.asarray(tv(QUERIES))
        cases.append({"kwargs": kwargs, "vocabulary": [str(t) for t in tv.get_vocabulary()],
                      "output": out.tolist()})
    chars = sorted(set("".join(CORPUS)))
    lookup = keras.layers.StringLookup(vocabulary=chars, mask_token=None)
    ids = np.asarray(lookup(list("the cat?!Z"))).tolist()
    inverse = keras.layers.StringLookup(vocabulary=lookup.get_vocabulary(), invert=True, mask_token=None)
    back = [b.decode() for b in np.asarray(inverse([0, 1, 5, len(chars), len(chars) + 3]))]
    adapted = keras.layers.StringLookup(max_tokens=6)
    adapted.adapt(list("abracadabra alakazam"))
    with open(os.path.join(HERE, "keras_text_cases.json"), "w") as f:
        json.dump({"corpus": CORPUS, "queries": QUERIES, "vectorization": cases,
                   "lookup": {"vocabulary": chars, "ids": ids, "inverse": back,
                              "adapted": [str(t) for t in adapted.get_vocabulary()]}}, f, ensure_ascii=False)


if __name__ == "__main__":
    main()
