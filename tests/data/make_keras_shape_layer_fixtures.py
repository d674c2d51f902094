"""Records tests/data/keras_shape_layers.json with Keras 3 (JAX backend): outputs, input gradients (of
sum(y * w) for a fixed w) and configs of RepeatVector, Permute, UpSampling, ZeroPadding, Cropping and
LayerNormalization (with its weight gradients), and the shapes Keras gives.

    KERAS_BACKEND=jax python tests/data/make_keras_shape_layer_fixtures.py
"""
import json
import os

import jax
import keras
import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
L = keras.layers

CASES = {
    "repeat": (lambda: L.RepeatVector(3), (2, 4)),
    "permute": (lambda: L.Permute((2, 1)), (2, 3, 4)),
    "permute3": (lambda: L.Permute((3, 1, 2)), (2, 3, 4, 2)),
    "up1": (lambda: L.UpSampling1D(3), (2, 3, 2)),
    "up2": (lambda: L.UpSampling2D((2, 3)), (2, 2, 3, 2)),
    "pad1": (lambda: L.ZeroPadding1D((1, 2)), (2, 3, 2)),
    "pad2": (lambda: L.ZeroPadding2D(((1, 0), (2, 1))), (2, 2, 3, 2)),
    "pad2int": (lambda: L.ZeroPadding2D(1), (2, 2, 3, 2)),
    "crop1": (lambda: L.Cropping1D((1, 2)), (2, 5, 2)),
    "crop2": (lambda: L.Cropping2D(((1, 0), (1, 2))), (2, 4, 5, 2)),
    "layernorm": (lambda: L.LayerNormalization(gamma_initializer="random_normal", beta_initializer="random_normal"),
                  (2, 3, 5)),
    "layernorm_plain": (lambda: L.LayerNormalization(center=False, scale=False, epsilon=1e-5), (3, 6)),
}


def main():
    rng = np.random.default_rng(0)
    out = {}
    for name, (make, shape) in CASES.items():
        keras.utils.set_random_seed(1)
        layer = make()
        x = rng.standard_normal(shape).astype("float32")
        y = np.asarray(layer(x))
        w = rng.standard_normal(y.shape).astype("float32")
        weights = [np.asarray(v) for v in layer.weights]

        def loss(x_, ws):
            for var, value in zip(layer.weights, ws):
                var.assign(value)
            return (layer(x_) * w).sum()

        gx, gw = jax.grad(lambda x_, ws: (layer.stateless_call(ws, [], x_)[0] * w).sum(), argnums=(0, 1))(
            x, [np.asarray(v) for v in layer.trainable_weights])
        config = {k: v for k, v in layer.get_config().items() if k not in ("dtype", "name")}
        out[name] = {"x": x.tolist(), "y": y.tolist(), "w": w.tolist(), "gx": np.asarray(gx).tolist(),
                     "weights": [v.tolist() for v in weights], "gw": [np.asarray(g).tolist() for g in gw],
                     "config": json.loads(json.dumps(config, default=str))}
    with open(os.path.join(HERE, "keras_shape_layers.json"), "w") as f:
        json.dump(out, f)


if __name__ == "__main__":
    main()
