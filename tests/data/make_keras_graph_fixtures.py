"""Records tests/data/keras_graph_cases.json.gz, keras_graph_layer_orders.json, keras_graph_siamese.keras and
keras_graph_seq2seq.keras with Keras 3 (JAX backend):
functional models that are graphs (several inputs and outputs, Add / Concatenate / the other merges, recurrent
states from return_state into initial_state) with their initial weights, predictions, the weights after one
SGD step and the logs of that step.

    KERAS_BACKEND=jax python tests/data/make_keras_graph_fixtures.py
"""
import gzip
import json
import os

import keras
import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
L = keras.layers


def residual():
    x = keras.Input((6,), name="x")
    d1 = L.Dense(6, activation="tanh", name="d1")(x)
    s = L.Add(name="add")([x, d1])
    m = L.Multiply(name="mul")([s, d1])
    sub = L.Subtract(name="sub")([m, x])
    avg = L.Average(name="avg")([sub, s, d1])
    mx = L.Maximum(name="max")([avg, x])
    mn = L.Minimum(name="min")([mx, d1])
    cat = L.Concatenate(name="cat")([mn, s])
    o1 = L.Dense(1, name="o1")(cat)
    o2 = L.Dense(3, activation="softmax", name="o2")(s)
    model = keras.Model(x, [o1, o2])
    model.compile(keras.optimizers.SGD(0.1), loss=["mse", "sparse_categorical_crossentropy"],
                  loss_weights=[1.0, 0.5])
    return model, (6,), [(1,), "int3"]


def two_inputs():
    a = keras.Input((5,), name="a")
    b = keras.Input((3,), name="b")
    h = L.Concatenate(name="cat")([L.Dense(4, activation="relu", name="da")(a), b])
    out = L.Dense(2, name="out")(h)
    model = keras.Model({"a": a, "b": b}, out)
    model.compile(keras.optimizers.SGD(0.1), loss="mse")
    return model, [(5,), (3,)], [(2,)]


def seq2seq(cell):
    enc_in = keras.Input((4, 3), name="enc_in")
    dec_in = keras.Input((5, 2), name="dec_in")
    layer = getattr(L, cell)
    outs = layer(6, return_state=True, name="enc")(enc_in)
    dec = layer(6, return_sequences=True, name="dec")(dec_in, initial_state=outs[1:])
    out = L.Dense(7, name="out")(dec)
    model = keras.Model([enc_in, dec_in], out)
    model.compile(keras.optimizers.SGD(0.1), loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    return model, [(4, 3), (5, 2)], ["int7x5"]


def siamese():
    a, b = keras.Input((5,), name="left"), keras.Input((5,), name="right")
    shared = L.Dense(4, activation="tanh", name="shared", kernel_regularizer=keras.regularizers.L2(0.01))
    twice = L.Dense(4, name="twice")
    ha, hb = shared(a), shared(b)
    d = L.Subtract(name="diff")([twice(ha), twice(hb)])
    out = L.Dense(1, activation="sigmoid", name="out")(L.Concatenate(name="cat")([d, L.Multiply(name="prod")([ha, hb])]))
    model = keras.Model([a, b], out)
    model.compile(keras.optimizers.SGD(0.1), loss="binary_crossentropy")
    return model, [(5,), (5,)], ["bin"]


def data(rng, spec, n=4):
    if spec == "bin":
        return rng.integers(0, 2, (n, 1)).astype("float32")
    if spec == "int3":
        return rng.integers(0, 3, (n,))
    if spec == "int7x5":
        return rng.integers(0, 7, (n, 5))
    return rng.standard_normal((n,) + spec).astype("float32")


def main():
    rng = np.random.default_rng(0)
    cases, orders = {}, {}
    for name, make in [("residual", residual), ("two_inputs", two_inputs), ("seq2seq_lstm", lambda: seq2seq("LSTM")),
                       ("seq2seq_gru", lambda: seq2seq("GRU")), ("seq2seq_rnn", lambda: seq2seq("SimpleRNN")),
                       ("siamese", siamese)]:
        keras.utils.set_random_seed(1)
        model, in_spec, out_spec = make()
        xs = [data(rng, s) for s in (in_spec if isinstance(in_spec, list) else [in_spec])]
        ys = [data(rng, s) for s in out_spec]
        x_arg = dict(zip(["a", "b"], xs)) if name == "two_inputs" else (xs if len(xs) > 1 else xs[0])
        y_arg = ys if len(ys) > 1 else ys[0]
        orders[name] = [l.name for l in model.layers if not isinstance(l, keras.layers.InputLayer)]
        w0 = [w.tolist() for w in model.get_weights()]
        p0 = model.predict(x_arg, verbose=0)
        p0 = [p.tolist() for p in p0] if isinstance(p0, list) else p0.tolist()
        logs = model.train_on_batch(x_arg, y_arg, return_dict=True)
        cases[name] = dict(x=[x.tolist() for x in xs], y=[y.tolist() for y in ys], w0=w0, p0=p0,
                           w1=[w.tolist() for w in model.get_weights()],
                           logs={k: float(v) for k, v in logs.items()})
        if name == "seq2seq_lstm":
            model.save(os.path.join(HERE, "keras_graph_seq2seq.keras"))
        if name == "siamese":
            model.save(os.path.join(HERE, "keras_graph_siamese.keras"))
    with gzip.open(os.path.join(HERE, "keras_graph_cases.json.gz"), "wt") as f:
        json.dump(cases, f)
    with open(os.path.join(HERE, "keras_graph_layer_orders.json"), "w") as f:
        json.dump(orders, f)


if __name__ == "__main__":
    main()
