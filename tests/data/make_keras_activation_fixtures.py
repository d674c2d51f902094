"""Records tests/data/keras_activation_layers.json with Keras 3 (JAX backend): the activation layers' outputs,
gradients (of sum(y * arange)) and configs.

    KERAS_BACKEND=jax python tests/data/make_keras_activation_fixtures.py
"""
import json
import os

import jax
import keras
import numpy as np
rng = np.random.default_rng(0)
x = (rng.standard_normal((4, 5)) * 3).astype("float32")
x[0, :3] = [0.0, 6.0, 2.5]
layers = {"relu": keras.layers.ReLU(), "relu6": keras.layers.ReLU(max_value=6.0), "relu_thr": keras.layers.ReLU(threshold=1.0, negative_slope=0.1),
          "leaky": keras.layers.LeakyReLU(), "leaky01": keras.layers.LeakyReLU(negative_slope=0.1), "elu": keras.layers.ELU(alpha=0.5), "softmax": keras.layers.Softmax(),
          "relu_slope": keras.layers.ReLU(negative_slope=0.2)}
out = {"x": x.tolist()}
for k, l in layers.items():

    y = np.asarray(l(x))
    g = np.asarray(jax.grad(lambda v: (l(v) * np.arange(20, dtype="float32").reshape(4, 5)).sum())(x))
    cfg = l.get_config(); cfg.pop("dtype")
    out[k] = {"y": y.tolist(), "g": g.tolist(), "config": cfg}
json.dump(out, open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "keras_activation_layers.json"), "w"))
