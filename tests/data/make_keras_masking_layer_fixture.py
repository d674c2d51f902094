"""Records tests/data/keras_masking_layer.json with Keras 3 (JAX backend): a Masking -> GRU -> Dense model's
weights, predictions and the weights after one SGD step, on sequences with masked steps.

    KERAS_BACKEND=jax python tests/data/make_keras_masking_layer_fixture.py
"""
import json
import os

import keras
import numpy as np
rng = np.random.default_rng(0)
x = rng.standard_normal((3, 5, 2)).astype("float32"); x[0, 3:] = 0; x[1, 0] = 0; x[2, 2] = [0, 1]
y = rng.standard_normal((3, 1)).astype("float32")
keras.utils.set_random_seed(1)
m = keras.Sequential([keras.Input((5, 2)), keras.layers.Masking(), keras.layers.GRU(3), keras.layers.Dense(1)])
m.compile(keras.optimizers.SGD(0.1), "mse")
w0 = [w.tolist() for w in m.get_weights()]; p0 = m.predict(x, verbose=0).tolist()
m.train_on_batch(x, y)
json.dump({"x": x.tolist(), "y": y.tolist(), "w0": w0, "p0": p0, "w1": [w.tolist() for w in m.get_weights()]}, open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "keras_masking_layer.json"), "w"))
