"""The functional graph models of tests/test_functional_graph.py, written once for both Keras 3 (which records
their fixtures: tests/data/make_keras_graph_fixtures.py) and gradsmith: each builder takes the ``keras`` module
and returns (compiled model, input specs, target specs)."""


def residual(keras):
    L = keras.layers
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


def two_inputs(keras):
    L = keras.layers
    a = keras.Input((5,), name="a")
    b = keras.Input((3,), name="b")
    h = L.Concatenate(name="cat")([L.Dense(4, activation="relu", name="da")(a), b])
    out = L.Dense(2, name="out")(h)
    model = keras.Model({"a": a, "b": b}, out)
    model.compile(keras.optimizers.SGD(0.1), loss="mse")
    return model, [(5,), (3,)], [(2,)]


def seq2seq(keras, cell):
    L = keras.layers
    enc_in = keras.Input((4, 3), name="enc_in")
    dec_in = keras.Input((5, 2), name="dec_in")
    layer = getattr(L, cell)
    outs = layer(6, return_state=True, name="enc")(enc_in)
    dec = layer(6, return_sequences=True, name="dec")(dec_in, initial_state=outs[1:])
    out = L.Dense(7, name="out")(dec)
    model = keras.Model([enc_in, dec_in], out)
    model.compile(keras.optimizers.SGD(0.1), loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    return model, [(4, 3), (5, 2)], ["int7x5"]


def siamese(keras):
    L = keras.layers
    a, b = keras.Input((5,), name="left"), keras.Input((5,), name="right")
    shared = L.Dense(4, activation="tanh", name="shared", kernel_regularizer=keras.regularizers.L2(0.01))
    twice = L.Dense(4, name="twice")
    ha, hb = shared(a), shared(b)
    d = L.Subtract(name="diff")([twice(ha), twice(hb)])
    joined = L.Concatenate(name="cat")([d, L.Multiply(name="prod")([ha, hb])])
    out = L.Dense(1, activation="sigmoid", name="out")(joined)
    model = keras.Model([a, b], out)
    model.compile(keras.optimizers.SGD(0.1), loss="binary_crossentropy")
    return model, [(5,), (5,)], ["bin"]


def makers(keras):
    """{case name: a function making its (model, input specs, target specs)}."""
    return {"residual": lambda: residual(keras), "two_inputs": lambda: two_inputs(keras),
            "seq2seq_lstm": lambda: seq2seq(keras, "LSTM"), "seq2seq_gru": lambda: seq2seq(keras, "GRU"),
            "seq2seq_rnn": lambda: seq2seq(keras, "SimpleRNN"), "siamese": lambda: siamese(keras)}
