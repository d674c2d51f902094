"""The sparse categorical cross-entropy on probabilities follows TensorFlow's formula (Keras's tensorflow
backend: clip to [eps, 1 - eps] FIRST, then normalize: -log(clip(p_y) / sum_j clip(p_j))), in the kernel, the
loss function, the Loss object, the metric and the compiled step; and the sparse loss and accuracy over a time
axis (logits (batch, T, vocab), labels (batch, T)) in the compiled step and layer by layer.

The numbers marked TF were recorded with TensorFlow 2.21 / Keras 3 (KERAS_BACKEND=tensorflow):
keras.losses.sparse_categorical_crossentropy, SparseCategoricalCrossentropy()(y, p) and tf.GradientTape's
gradient of it, and keras.metrics.SparseCategoricalCrossentropy."""
import numpy as np
import pytest

import gradsmith as keras
from gradsmith import ops

import reference as R

# rows that do not sum to 1, zeros, an entry above 1 - eps, one below eps
P = np.array([[0.2, 0.3, 0.1], [0.0, 0.5, 0.5], [0.9, 0.0, 1.2], [1e-9, 0.999, 0.001], [0.25, 0.25, 0.5]],
             np.float32)
Y = np.array([1, 0, 2, 0, 2])
TF_PER_SAMPLE = [0.6931471824645996, 16.11809539794922, 0.6418539881706238, 16.11809539794922, 0.6931471824645996]
TF_MEAN = 6.852867126464844
TF_GRAD = [[0.3333333134651184, -0.3333333432674408, 0.3333333134651184], [0.0, 0.19999995827674866, 0.19999995827674866],
           [0.10526316612958908, 0.0, 0.0], [0.0, 0.19999998807907104, 0.19999991357326508],
           [0.20000000298023224, 0.20000000298023224, -0.20000000298023224]]


def test_the_function_and_metric_give_tensorflows_numbers():
    np.testing.assert_allclose(keras.losses.sparse_categorical_crossentropy(Y, P), TF_PER_SAMPLE, rtol=1e-6)
    m = keras.metrics.SparseCategoricalCrossentropy()
    m.update_state(Y, P)
    np.testing.assert_allclose(float(m.result()), TF_MEAN, rtol=1e-6)


def test_the_kernel_and_loss_object_give_tensorflows_value_and_gradient():
    value, grad = ops.loss_and_grad("sparse_categorical_crossentropy", Y, P)
    np.testing.assert_allclose(value, TF_MEAN, rtol=1e-6)
    np.testing.assert_allclose(grad, TF_GRAD, rtol=1e-6, atol=1e-7)
    loss = keras.losses.SparseCategoricalCrossentropy()
    np.testing.assert_allclose(float(loss(Y, P)), TF_MEAN, rtol=1e-6)
    v, g = loss.value_and_grad(Y, P)
    np.testing.assert_allclose(g, TF_GRAD, rtol=1e-6, atol=1e-7)


def test_the_kernel_matches_the_reference_formula(rng):
    p = rng.random((64, 7)).astype(np.float32) * 1.3  # unnormalized, some above 1 - eps
    p[::5, 2] = 0.0  # some below eps
    y = rng.integers(0, 7, 64)
    w = rng.random(64).astype(np.float32)
    value, grad = ops.loss_and_grad("sparse_categorical_crossentropy", y, p, sample_weight=w)
    want_value, want_grad = R.loss_value_and_grad("sparse_categorical_crossentropy", y, p, sample_weight=w)
    np.testing.assert_allclose(value, want_value, rtol=1e-5)
    np.testing.assert_allclose(grad, want_grad, rtol=1e-4, atol=1e-7)


def test_only_the_sparse_loss_changed():
    # the categorical cross-entropy on probabilities still normalizes first (Keras on every backend)
    onehot = np.eye(3, dtype=np.float32)[Y]
    value, _ = ops.loss_and_grad("categorical_crossentropy", onehot, P)
    q = np.clip(P / P.sum(1, keepdims=True), np.float32(1e-7), np.float32(1 - 1e-7))
    np.testing.assert_allclose(value, np.mean(-np.log(q[np.arange(5), Y])), rtol=1e-6)


# logits (2, 3, 4) and labels (2, 3); TF: the loss's mean over batch and time, the accuracy over every step
LOGITS = np.array([[[0.1257302165031433, -0.13210485875606537, 0.6404226422309875, 0.10490011423826218],
                    [-0.5356693863868713, 0.3615950644016266, 1.3040000200271606, 0.9470809698104858],
                    [-0.7037352323532104, -1.2654215097427368, -0.6232744455337524, 0.04132597893476486]],
                   [[-2.32503080368042, -0.218791663646698, -1.2459110021591187, -0.7322673797607422],
                    [-0.5442590117454529, -0.3163001537322998, 0.4116305410861969, 1.042513370513916],
                    [-0.12853465974330902, 1.3664634227752686, -0.6651946902275085, 0.35151007771492004]]],
                  np.float32)
LABELS = np.array([[1, 2, 3], [1, 1, 3]])
TF_TIME_LOSS, TF_TIME_ACCURACY = 1.2844902276992798, 0.5


def test_over_a_time_axis_as_tensorflow():
    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    np.testing.assert_allclose(float(loss(LABELS, LOGITS)), TF_TIME_LOSS, rtol=1e-6)
    acc = keras.metrics.SparseCategoricalAccuracy()
    acc.update_state(LABELS, LOGITS)
    assert float(acc.result()) == TF_TIME_ACCURACY


def _sequence_model(from_logits, seed=1):
    keras.utils.set_random_seed(seed)
    model = keras.Sequential([keras.Input((7,)), keras.layers.Embedding(12, 5),
                              keras.layers.Dense(12, activation=None if from_logits else "softmax")])
    model.compile(optimizer="adam", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=from_logits),
                  metrics=["accuracy"])
    return model


@pytest.mark.parametrize("from_logits", [True, False])
@pytest.mark.parametrize("weighted", [False, True])
def test_time_axis_in_the_compiled_step_matches_the_layer_by_layer_path(rng, from_logits, weighted):
    x, y = rng.integers(0, 12, (40, 7)), rng.integers(0, 12, (40, 7))
    sw = rng.random(40).astype(np.float32) if weighted else None
    out = []
    for python_only in (False, True):
        model = _sequence_model(from_logits)
        if python_only:
            model._compiled_step = lambda: None
        keras.utils.set_random_seed(5)
        out.append((model, model.fit(x, y, sample_weight=sw, batch_size=8, epochs=2, verbose=0).history))
    (planned, h1), (plain, h2) = out
    assert planned._plan is not None, planned._plan_reason
    np.testing.assert_array_equal(planned.parameters, plain.parameters)
    np.testing.assert_allclose(h1["loss"], h2["loss"], rtol=1e-12)
    np.testing.assert_allclose(h1["accuracy"], h2["accuracy"], rtol=1e-6)
    np.testing.assert_array_equal(planned.predict(x, verbose=0), plain.predict(x, verbose=0))
    assert planned.predict(x, verbose=0).shape == (40, 7, 12)
    e1, e2 = planned.evaluate(x, y, verbose=0), plain.evaluate(x, y, verbose=0)
    np.testing.assert_allclose(e1, e2, rtol=1e-6)
    # one step by hand: the loss is the mean over batch and time
    logits = planned.predict(x[:8], verbose=0)
    value, _ = ops.loss_and_grad("sparse_categorical_crossentropy", y[:8].reshape(-1), logits.reshape(-1, 12),
                                 from_logits=from_logits)
    assert np.isclose(planned.test_on_batch(x[:8], y[:8])[0], value, rtol=1e-6)


def test_bad_labels_over_a_time_axis_are_named(rng):
    model = _sequence_model(True)
    x, y = rng.integers(0, 12, (8, 7)), rng.integers(0, 12, (8, 7))
    model.train_on_batch(x, y)
    params = model.parameters.copy()
    y[2, 3] = 12
    with pytest.raises(ValueError, match="12"):
        model.train_on_batch(x, y)
    np.testing.assert_array_equal(model.parameters, params)
