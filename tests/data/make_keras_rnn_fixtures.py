"""Writes the Keras-made recurrent fixtures of tests/test_recurrent_keras.py. Run with real Keras 3 (not needed by
the tests):  KERAS_BACKEND=jax python tests/data/make_keras_rnn_fixtures.py

keras_gru.keras: Input(6, 3) -> GRU(5) (reset_after=True, the default) -> Dense(2); Adam + mse.
keras_rnn_mix.keras: Input(7, 4) -> GRU(4, reset_after=False, go_backwards, return_sequences, L2 on the
    recurrent kernel) -> SimpleRNN(3, go_backwards, return_sequences) -> SimpleRNN(3) -> Dense(1);
    SGD with momentum + mse.
keras_lstm_seq.keras: Input(5, 3) -> LSTM(6, return_sequences) -> LSTM(4, return_sequences) -> Dense(7)
    (per-step logits); RMSprop + sparse_categorical_crossentropy(from_logits) + accuracy over every time step
    (targets (batch, steps)).
keras_rnn_io.npz: inputs and targets, Keras's predictions after a few fitted steps, and the weights after one
    more train_on_batch in Keras (the optimizer state carried over).
"""
import os

os.environ.setdefault("KERAS_BACKEND", "jax")
import keras  # noqa: E402
import numpy as np  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))


def main():
    keras.utils.set_random_seed(13)
    rng = np.random.default_rng(13)
    L = keras.layers
    out = {}

    def record(name, model, x, y, fit_batch):
        model.fit(x, y, batch_size=fit_batch, epochs=2, verbose=0)
        model.save(os.path.join(HERE, f"keras_{name}.keras"))
        out[f"x_{name}"], out[f"y_{name}"] = x, y
        out[f"pred_{name}"] = model.predict(x, verbose=0)
        model.train_on_batch(x, y)
        out.update({f"{name}_after_step_{i}": w.numpy() for i, w in enumerate(model.weights)})

    gru = keras.Sequential([keras.Input((6, 3)), L.GRU(5), L.Dense(2)])
    gru.compile(optimizer="adam", loss="mse")
    record("gru", gru, rng.standard_normal((8, 6, 3)).astype(np.float32),
           rng.standard_normal((8, 2)).astype(np.float32), 4)

    mix = keras.Sequential([
        keras.Input((7, 4)),
        L.GRU(4, reset_after=False, go_backwards=True, return_sequences=True,
              recurrent_regularizer=keras.regularizers.L2(0.01), bias_initializer="random_normal"),
        L.SimpleRNN(3, go_backwards=True, return_sequences=True), L.SimpleRNN(3), L.Dense(1)])
    mix.compile(optimizer=keras.optimizers.SGD(learning_rate=0.05, momentum=0.9), loss="mse")
    record("rnn_mix", mix, rng.standard_normal((6, 7, 4)).astype(np.float32),
           rng.standard_normal((6, 1)).astype(np.float32), 3)

    lstm = keras.Sequential([keras.Input((5, 3)), L.LSTM(6, return_sequences=True), L.LSTM(4, return_sequences=True),
                             L.Dense(7)])
    lstm.compile(optimizer="rmsprop", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                 metrics=["accuracy"])
    record("lstm_seq", lstm, rng.standard_normal((6, 5, 3)).astype(np.float32),
           rng.integers(0, 7, (6, 5)).astype(np.int64), 3)
    np.savez(os.path.join(HERE, "keras_rnn_io.npz"), **out, keras_version=np.array(keras.__version__))


if __name__ == "__main__":
    main()
