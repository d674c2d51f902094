"""model.generate against re-running the prefix: milliseconds per new token.

    python benchmarks/bench_generate.py

The demo's model (Embedding(101, 64) -> GRU(256, return_sequences=True) -> Dense(101)), a 200-token prompt,
50 new tokens, greedy. generate steps the GRU once per token, keeping its state; the baseline is what a
program without it does: model.predict on the whole prefix for every new token, taking the last step's
scores. Both must give the same tokens (checked), so the ratio is the price of re-running the prefix.
"""
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "python"))
import gradsmith as keras  # noqa: E402


def main(prompt_length=200, new=50, vocab=101):
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((None,), dtype="int32"), keras.layers.Embedding(vocab, 64),
                              keras.layers.GRU(256, return_sequences=True), keras.layers.Dense(vocab)])
    model.compile(optimizer="adam", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    prompt = np.random.default_rng(0).integers(0, vocab, prompt_length)
    times = []
    for _ in range(3):
        t0 = time.perf_counter()
        out = model.generate(prompt, num_generated=new, temperature=0.0)
        times.append(time.perf_counter() - t0)
    per_token = min(times) / new
    seq = list(prompt)
    t0 = time.perf_counter()
    for _ in range(new):
        scores = model.predict(np.array([seq]), verbose=0)
        seq.append(int(np.argmax(scores[0, -1])))
    rerun = (time.perf_counter() - t0) / new
    assert list(np.asarray(out).reshape(-1)[prompt_length:]) == seq[prompt_length:], "different tokens"
    print(f"generate: {per_token * 1e3:.2f} ms a token (the {prompt_length}-token prompt included); re-running "
          f"the prefix with predict: {rerun * 1e3:.2f} ms a token; {rerun / per_token:.1f}x")


if __name__ == "__main__":
    main()
