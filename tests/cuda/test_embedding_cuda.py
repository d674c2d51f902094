"""Embedding on the GPU (cuda/embedding.cu) against the CPU: the gather gives the table's rows exactly, the
per-row gradient gather sums in the CPU's order (no atomics), models with an Embedding train as on the CPU and
repeat bit for bit, and a bad id stops the step with the model as it was."""
import numpy as np
import pytest

import gradsmith as keras
from gradsmith import cuda

pytestmark = [pytest.mark.cuda,
              pytest.mark.skipif(not cuda.is_available(), reason=f"no CUDA device: {cuda.unavailable_reason()}")]

layers = keras.layers


def _model(device, head, vocab=40, seed=3):
    keras.utils.set_random_seed(seed)
    stack = [layers.Input((9,), dtype="int32"), layers.Embedding(vocab, 6, embeddings_regularizer="l2")]
    if head == "steps":  # next-token style: logits on every step, labels (batch, T)
        stack.append(layers.Dense(vocab))
        loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    elif head == "pool":
        stack += [layers.GlobalAveragePooling1D(), layers.Dense(4, activation="softmax")]
        loss = "sparse_categorical_crossentropy"
    else:  # the table alone: its gradient is the loss's, gathered per row
        stack.append(layers.Flatten())
        loss = "mse"
    model = keras.Sequential(stack)
    model.compile(optimizer="sgd" if head == "table" else "adam", loss=loss, metrics=["accuracy"] if head != "table"
                  else None, device=device)
    return model


def _data(head, vocab=40, n=64):
    rng = np.random.default_rng(5)
    x = rng.integers(0, vocab, (n, 9))
    x[:, 0] = 7  # a row every sample names: its gradient sums n rows of dy
    y = {"steps": rng.integers(0, vocab, (n, 9)), "pool": rng.integers(0, 4, n),
         "table": rng.standard_normal((n, 54)).astype(np.float32)}[head]
    return x, y


@pytest.mark.parametrize("head", ["steps", "pool", "table"])
def test_embedding_models_train_on_the_gpu_as_on_the_cpu(head):
    x, y = _data(head)
    runs = []
    for device in ("cpu", "cuda", "cuda"):
        model = _model(device, head)
        keras.utils.set_random_seed(4)
        history = model.fit(x, y, batch_size=16, epochs=2, verbose=0).history
        assert model._plan is not None and model._plan.on_device == (device == "cuda"), model._plan_reason
        runs.append((history["loss"], model.get_weights(), model.predict(x, verbose=0)))
    (cpu_loss, cpu_w, cpu_p), (gpu_loss, gpu_w, gpu_p), (again_loss, again_w, _) = runs
    np.testing.assert_allclose(gpu_loss, cpu_loss, rtol=1e-4)
    for a, b in zip(gpu_w, cpu_w):
        np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-5)
    np.testing.assert_allclose(gpu_p, cpu_p, rtol=1e-3, atol=1e-5)
    assert gpu_loss == again_loss  # a GPU run repeats bit for bit
    for a, b in zip(gpu_w, again_w):
        np.testing.assert_array_equal(a, b)


def test_the_gather_gives_the_tables_rows_exactly():
    model = _model("cuda", "table")
    x, _ = _data("table")
    table = model.layers[0].embeddings
    want = table[x].reshape(len(x), -1)
    np.testing.assert_array_equal(model.predict(x, verbose=0), want)


def test_a_bad_id_on_the_gpu_stops_the_step_and_leaves_the_model_as_it_was():
    model = _model("cuda", "pool")
    x, y = _data("pool")
    model.train_on_batch(x[:16], y[:16])
    weights, iterations = model.get_weights(), int(model.optimizer.iterations)
    bad = x[:16].copy()
    bad[2, 5] = 40
    with pytest.raises(ValueError, match=r"input id 40 \(sample 2, position 5\) is outside the vocabulary \[0, 40\)"):
        model.train_on_batch(bad, y[:16])
    for a, b in zip(model.get_weights(), weights):
        np.testing.assert_array_equal(a, b)
    assert int(model.optimizer.iterations) == iterations
    model.train_on_batch(x[:16], y[:16])  # and it still trains
