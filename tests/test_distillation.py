"""Distiller (keras.io's knowledge-distillation example as a library class): the loss and its gradient against a
float64 NumPy twin of the example's formula, the teacher untouched, the student learning, and the argument
checks."""
import numpy as np
import pytest

import gradsmith as keras


def _models(rng):
    keras.utils.set_random_seed(0)
    teacher = keras.Sequential([keras.Input((6,)), keras.layers.Dense(16, activation="relu"), keras.layers.Dense(3)])
    student = keras.Sequential([keras.Input((6,)), keras.layers.Dense(4, activation="relu"), keras.layers.Dense(3)])
    return teacher, student


def _softmax(z):
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def _reference_loss(s, t, y, alpha, temp):
    """The example's loss in float64: alpha * SCCE(from logits) + (1 - alpha) * T^2 * KL(softmax(t/T) || softmax(s/T))."""
    s, t = s.astype(np.float64), t.astype(np.float64)
    student = -np.log(_softmax(s)[np.arange(len(y)), y]).mean()
    pt = np.clip(_softmax(t / temp), 1e-7, 1)
    ps = np.clip(_softmax(s / temp), 1e-7, 1)
    distill = (pt * np.log(pt / ps)).sum(axis=1).mean()
    return alpha * student + (1 - alpha) * distill * temp ** 2


@pytest.mark.parametrize("alpha,temp", [(0.1, 10.0), (0.5, 2.0), (1.0, 3.0)])
def test_loss_and_gradient_match_the_example(alpha, temp):
    rng = np.random.default_rng(1)
    teacher, student = _models(rng)
    x = rng.standard_normal((8, 6)).astype(np.float32)
    y = rng.integers(0, 3, 8)
    d = keras.Distiller(student=student, teacher=teacher)
    d.compile(optimizer="adam", metrics=["accuracy"],
              student_loss_fn=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
              distillation_loss_fn=keras.losses.KLDivergence(), alpha=alpha, temperature=temp)
    s = student.predict(x, verbose=0)
    t = teacher.predict(x, verbose=0)
    value, grad = d._loss_and_grad(x, y, s, None, with_grad=True)
    assert value == pytest.approx(_reference_loss(s, t, y, alpha, temp), rel=1e-4)
    eps = 1e-3
    for i, j in [(0, 0), (3, 2), (7, 1)]:
        up, down = s.astype(np.float64).copy(), s.astype(np.float64).copy()
        up[i, j] += eps
        down[i, j] -= eps
        numeric = (_reference_loss(up, t, y, alpha, temp) - _reference_loss(down, t, y, alpha, temp)) / (2 * eps)
        assert grad[i, j] == pytest.approx(numeric, rel=2e-3, abs=1e-5)


def test_the_student_learns_and_the_teacher_does_not_change():
    rng = np.random.default_rng(2)
    teacher, _ = _models(rng)
    x = rng.standard_normal((256, 6)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.int64) + (x[:, 1] > 0)
    teacher.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    teacher.fit(x, y, epochs=30, verbose=0)
    before = [w.copy() for w in teacher.get_weights()]
    runs = {}
    for alpha in (1.0, 0.0):  # labels only; the teacher only
        keras.utils.set_random_seed(5)
        student = keras.Sequential([keras.Input((6,)), keras.layers.Dense(4, activation="relu"), keras.layers.Dense(3)])
        d = keras.Distiller(student=student, teacher=teacher)
        d.compile(optimizer=keras.optimizers.Adam(), metrics=[keras.metrics.SparseCategoricalAccuracy()],
                  student_loss_fn=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  distillation_loss_fn=keras.losses.KLDivergence(), alpha=alpha, temperature=2)
        agree = (student.predict(x, verbose=0).argmax(1) == teacher.predict(x, verbose=0).argmax(1)).mean()
        first = d.evaluate(x, y, verbose=0)
        history = d.fit(x, y, epochs=20, verbose=0)
        assert set(history.history) == {"loss", "sparse_categorical_accuracy"}
        assert d.evaluate(x, y, verbose=0)[0] < first[0]
        runs[alpha] = (student, agree)
        np.testing.assert_array_equal(d.predict(x, verbose=0), student.predict(x, verbose=0))
    # alpha = 1 is the student's own training, bit for bit
    keras.utils.set_random_seed(5)
    alone = keras.Sequential([keras.Input((6,)), keras.layers.Dense(4, activation="relu"), keras.layers.Dense(3)])
    alone.compile(keras.optimizers.Adam(), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    alone._compiled_step = lambda: None  # the distiller's student trains layer by layer
    alone.fit(x, y, epochs=20, verbose=0)
    for a, b in zip(alone.get_weights(), runs[1.0][0].get_weights()):
        np.testing.assert_array_equal(a, b)
    # alpha = 0: the student comes to agree with the teacher
    student, agree_before = runs[0.0]
    agree_after = (student.predict(x, verbose=0).argmax(1) == teacher.predict(x, verbose=0).argmax(1)).mean()
    assert agree_after > agree_before + 0.1
    for a, b in zip(before, teacher.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_bad_arguments():
    rng = np.random.default_rng(3)
    teacher, student = _models(rng)
    with pytest.raises(TypeError, match="student"):
        keras.Distiller(student=object(), teacher=teacher)
    d = keras.Distiller(student=student, teacher=teacher)
    with pytest.raises(ValueError, match="alpha"):
        d.compile("adam", student_loss_fn="mse", distillation_loss_fn="kld", alpha=2)
    with pytest.raises(ValueError, match="temperature"):
        d.compile("adam", student_loss_fn="mse", distillation_loss_fn="kld", temperature=0)
