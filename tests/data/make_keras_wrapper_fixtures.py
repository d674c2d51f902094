"""Records tests/data/keras_wrappers_cases.json.gz and keras_bidirectional.keras with Keras 3 (JAX backend):
Bidirectional (every merge mode, GRU / LSTM / SimpleRNN, with and without return_sequences) and
TimeDistributed(Dense): initial weights, predictions, and the weights after one SGD step.

    KERAS_BACKEND=jax python tests/data/make_keras_wrapper_fixtures.py
"""
import gzip
import json
import os

import keras
import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
rng = np.random.default_rng(0)
cases = {}
for merge in ["concat", "sum", "ave", "mul"]:
    for cell in ["GRU", "LSTM", "SimpleRNN"]:
        for seq in [True, False]:
            keras.utils.set_random_seed(1)
            inner = getattr(keras.layers, cell)(3, return_sequences=seq)
            m = keras.Sequential([keras.Input((4, 2)), keras.layers.Bidirectional(inner, merge_mode=merge)]
                                 + ([keras.layers.TimeDistributed(keras.layers.Dense(2))] if seq else [keras.layers.Dense(2)]))
            x = rng.standard_normal((3, 4, 2)).astype("float32")
            y = rng.standard_normal((3, 4, 2) if seq else (3, 2)).astype("float32")
            m.compile(keras.optimizers.SGD(0.1), "mse")
            w0 = [w.tolist() for w in m.get_weights()]
            p0 = m.predict(x, verbose=0).tolist()
            m.train_on_batch(x, y)
            cases[f"{merge}-{cell}-{seq}"] = dict(x=x.tolist(), y=y.tolist(), w0=w0, p0=p0,
                                                  w1=[w.tolist() for w in m.get_weights()])
            if merge == "concat" and cell == "GRU" and seq:
                m.save(HERE + "/keras_bidirectional.keras")

with gzip.open(HERE + "/keras_wrappers_cases.json.gz", "wt") as f:
    json.dump(cases, f)
