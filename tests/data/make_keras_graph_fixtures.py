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
import sys

import keras
import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))  # tests/, for graph_models
import graph_models  # noqa: E402


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
    for name, make in graph_models.makers(keras).items():
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
