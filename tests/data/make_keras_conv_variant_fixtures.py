"""Records tests/data/keras_conv_variants.json.gz with Keras 3 (JAX backend): DepthwiseConv2D, SeparableConv2D and
Conv2DTranspose (strides, padding, dilation, depth multipliers, activations): weights, outputs, and the
gradients of sum(y * w) with respect to the input and the weights.

    KERAS_BACKEND=jax python tests/data/make_keras_conv_variant_fixtures.py
"""
import gzip
import json
import os

import jax
import keras
import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
L = keras.layers

CASES = {
    "dw_valid": (lambda: L.DepthwiseConv2D(3), (1, 6, 5, 3)),
    "dw_same_s2_m2": (lambda: L.DepthwiseConv2D((3, 2), strides=2, padding="same", depth_multiplier=2,
                                                activation="relu"), (1, 7, 6, 2)),
    "dw_dilated": (lambda: L.DepthwiseConv2D(2, dilation_rate=2, padding="same", use_bias=False), (1, 5, 5, 2)),
    "sep_same": (lambda: L.SeparableConv2D(4, 3, padding="same", activation="tanh"), (1, 5, 6, 3)),
    "sep_s2_m2": (lambda: L.SeparableConv2D(3, (2, 3), strides=2, depth_multiplier=2), (1, 7, 7, 2)),
    "tr_valid": (lambda: L.Conv2DTranspose(3, 3), (1, 4, 5, 2)),
    "tr_same_s2": (lambda: L.Conv2DTranspose(2, 3, strides=2, padding="same", activation="relu"), (1, 3, 4, 3)),
    "tr_valid_s2_k4": (lambda: L.Conv2DTranspose(2, 4, strides=2), (1, 3, 3, 2)),
    "tr_valid_s3_k2": (lambda: L.Conv2DTranspose(2, 2, strides=3, use_bias=False), (1, 3, 2, 2)),
    "tr_same_s2_k2": (lambda: L.Conv2DTranspose(3, (2, 4), strides=(2, 1), padding="same"), (1, 3, 4, 2)),
}


def main():
    rng = np.random.default_rng(0)
    out = {}
    for name, (make, shape) in CASES.items():
        keras.utils.set_random_seed(1)
        layer = make()
        x = rng.standard_normal(shape).astype("float32")
        layer.build(shape)
        weights = [(rng.standard_normal(v.shape) * 0.5).astype("float32") for v in layer.weights]
        y = np.asarray(layer.stateless_call(weights, [], x)[0])
        w = rng.standard_normal(y.shape).astype("float32")
        gx, gw = jax.grad(lambda x_, ws: (layer.stateless_call(ws, [], x_)[0] * w).sum(), argnums=(0, 1))(x, weights)
        config = {k: v for k, v in layer.get_config().items() if k not in ("dtype", "name") and
                  not k.endswith("_initializer")}
        out[name] = {"x": x.tolist(), "weights": [v.tolist() for v in weights], "y": y.tolist(), "w": w.tolist(),
                     "gx": np.asarray(gx).tolist(), "gw": [np.asarray(g).tolist() for g in gw],
                     "names": [v.name for v in layer.weights], "config": json.loads(json.dumps(config, default=list))}
    with gzip.open(os.path.join(HERE, "keras_conv_variants.json.gz"), "wt") as f:
        json.dump(out, f)


if __name__ == "__main__":
    main()
