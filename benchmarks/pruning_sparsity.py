"""Test accuracy against sparsity on the demo's data (gradsmith.demo: the breast-cancer set, its 30-128-64-1
model): train 20 epochs, then prune with PolynomialDecay from 0 to the target over 20 more epochs (masks every
10 steps) and fine-tune; the kernels' measured sparsity and the test accuracy of the stripped model, medians of
three seeds.

    python benchmarks/pruning_sparsity.py
"""
import numpy as np

import gradsmith as keras
from gradsmith import demo, pruning


def run(target, seed):
    keras.utils.set_random_seed(seed)
    x, y, _ = demo.load_data(seed)
    order = np.random.default_rng(seed).permutation(len(x))
    x, y = x[order], y[order]
    split = int(0.8 * len(x))
    mean, std = x[:split].mean(axis=0), x[:split].std(axis=0) + 1e-7
    x = (x - mean) / std
    x_train, x_test, y_train, y_test = x[:split], x[split:], y[:split], y[split:]
    model = keras.Sequential([keras.Input((30,)), keras.layers.Dense(128, activation="relu"),
                              keras.layers.Dense(64, activation="relu"), keras.layers.Dense(1, activation="sigmoid")])
    model.compile("adam", "binary_crossentropy", metrics=["accuracy"])
    model.fit(x_train, y_train, batch_size=32, epochs=20, verbose=0)
    steps = 20 * ((len(x_train) + 31) // 32)
    pruned = pruning.prune_low_magnitude(model, pruning_schedule=pruning.PolynomialDecay(
        0.0, target, begin_step=0, end_step=steps // 2, frequency=10)) if target else model
    pruned.compile(keras.optimizers.Adam(1e-3), "binary_crossentropy", metrics=["accuracy"])
    callbacks = [pruning.UpdatePruningStep()] if target else []
    pruned.fit(x_train, y_train, batch_size=32, epochs=20, verbose=0, callbacks=callbacks)
    final = pruning.strip_pruning(pruned) if target else pruned
    final.compile("adam", "binary_crossentropy", metrics=["accuracy"])
    kernels = [l.kernel for l in final.layers]
    sparsity = sum(int((k == 0).sum()) for k in kernels) / sum(k.size for k in kernels)
    return sparsity, final.evaluate(x_test, y_test, verbose=0)[1]


def main():
    print("| target sparsity | kernels' sparsity | test accuracy (median of 3 seeds) |")
    print("|---|---|---|")
    for target in (0.0, 0.5, 0.8, 0.9, 0.95, 0.98):
        results = [run(target, seed) for seed in (0, 1, 2)]
        print(f"| {target:.0%} | {np.median([r[0] for r in results]):.1%} | "
              f"{np.median([r[1] for r in results]):.4f} |")


if __name__ == "__main__":
    main()
