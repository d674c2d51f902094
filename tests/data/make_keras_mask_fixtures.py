"""Records Keras 3's numbers for tests/test_masking.py: models that start with Embedding(mask_zero=True), on
token ids padded with zeros (trailing and leading), with weights set explicitly (both libraries start equal).

Run with real Keras on JAX:  KERAS_BACKEND=jax python tests/data/make_keras_mask_fixtures.py
Writes tests/data/keras_mask_fixtures.npz: per model, the initial weights, predict's output, evaluate's loss
and accuracy, train_on_batch's loss and the weights after that one step (SGD 0.1).
"""
import os

import numpy as np

VOCAB, T = 9, 6
# Each case: (name, the layer after the Embedding, its kwargs, head units, loss).
CASES = [
    ("gru_seq", "GRU", {"units": 5, "return_sequences": True}, VOCAB, "scce"),
    ("lstm_last", "LSTM", {"units": 4}, 1, "mse"),
    ("rnn_back_seq", "SimpleRNN", {"units": 4, "return_sequences": True, "go_backwards": True}, 3, "scce"),
    ("gru_back_last", "GRU", {"units": 3, "go_backwards": True, "reset_after": False}, 1, "mse"),
    ("pool", "GlobalAveragePooling1D", {}, 3, "scce"),
]

X = np.array([[3, 1, 4, 1, 0, 0],     # trailing padding
              [0, 0, 5, 2, 6, 5],     # leading padding
              [3, 5, 8, 7, 2, 7],     # none
              [0, 2, 0, 8, 1, 0]],    # both, and a zero inside
             dtype=np.int32)


def build(keras, rec, kwargs, head, loss):
    layer = getattr(keras.layers, rec)(**kwargs)
    model = keras.Sequential([keras.Input((T,), dtype="int32"), keras.layers.Embedding(VOCAB, 3, mask_zero=True),
                              layer, keras.layers.Dense(head)])
    loss_fn = (keras.losses.SparseCategoricalCrossentropy(from_logits=True) if loss == "scce"
               else keras.losses.MeanSquaredError())
    metric = "accuracy" if loss == "scce" else "mae"
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss=loss_fn, metrics=[metric])
    return model


def targets(kwargs, head, loss, rng):
    seq = kwargs.get("return_sequences", False)
    if loss == "scce":
        return rng.integers(0, head, size=(len(X), T) if seq else (len(X),)).astype(np.int32)
    return rng.normal(size=(len(X), T, 1) if seq else (len(X), 1)).astype(np.float32)


def main():
    os.environ.setdefault("KERAS_BACKEND", "jax")
    import keras

    out = {"x": X}
    rng = np.random.default_rng(7)
    for name, rec, kwargs, head, loss in CASES:
        model = build(keras, rec, kwargs, head, loss)
        weights = [rng.uniform(-0.6, 0.6, size=w.shape).astype(np.float32) for w in model.get_weights()]
        model.set_weights(weights)
        y = targets(kwargs, head, loss, rng)
        out[f"{name}/y"] = y
        for i, w in enumerate(weights):
            out[f"{name}/w{i}"] = w
        out[f"{name}/predict"] = model.predict(X, verbose=0)
        ev = model.evaluate(X, y, verbose=0, return_dict=True)
        out[f"{name}/eval"] = np.array([ev["loss"], ev["accuracy" if loss == "scce" else "mae"]], np.float64)
        out[f"{name}/train_loss"] = np.array(model.train_on_batch(X, y, return_dict=True)["loss"], np.float64)
        for i, w in enumerate(model.get_weights()):
            out[f"{name}/after{i}"] = w
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "keras_mask_fixtures.npz")
    np.savez_compressed(path, **out)
    print(path, os.path.getsize(path), "bytes")


if __name__ == "__main__":
    main()
