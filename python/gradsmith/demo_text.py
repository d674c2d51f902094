"""``python -m gradsmith.demo text``: train a character-level GRU on text that ships with Python and generate.

The text is the standard library's own help topics (``pydoc_data.topics``: the language reference's sections
as plain text). It becomes character ids (``gradsmith.data.Vocabulary``) and windows of 64 characters whose
targets are the next characters (``sequence_dataset``, the TensorFlow text tutorial's layout). The model is
the text-generation program's: Embedding -> GRU(return_sequences=True) -> Dense(vocabulary), Adam, sparse
categorical cross-entropy on the logits. After training it writes text from a prompt with
``model.generate`` (a gradsmith extension: one GRU step per new character). Exits non-zero if the loss did
not fall below 2.5 nats a character (from about 4.5 for a guess among the ~100 characters).
"""
import sys
import time

import numpy as np

import gradsmith as keras

SEQUENCE, BATCH, CHARACTERS = 64, 32, 200_000


def load_text():
    """The help topics, without the rule lines ('====', '----') that underline headings."""
    from pydoc_data.topics import topics

    text = "\n".join(topics[key] for key in sorted(topics))
    lines = [line for line in text.split("\n") if not (len(line) > 3 and set(line.strip()) <= set("=-*~^"))]
    return "\n".join(lines)[:CHARACTERS]


def main(epochs=10, seed=0, prompt="The ", generated=240):
    keras.utils.set_random_seed(seed)
    text = load_text()
    vocab = keras.data.Vocabulary.from_text(text)
    ids = vocab.encode(text)
    train, validation = keras.data.sequence_dataset(ids, SEQUENCE, batch_size=BATCH, shuffle=10_000, seed=seed,
                                                    validation_split=0.05)
    info = keras.cpu_info()
    print(f"gradsmith {keras.__version__} on {info['isa']} with {info['threads']} threads; {len(text):,} characters "
          f"of Python's help topics, {len(vocab)} distinct")
    model = keras.Sequential([
        keras.layers.Embedding(len(vocab), 64),
        keras.layers.GRU(256, return_sequences=True),
        keras.layers.Dense(len(vocab)),
    ])
    model.compile(optimizer="adam", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"])
    t0 = time.perf_counter()
    history = model.fit(train, epochs=epochs, validation_data=validation, verbose=2)
    print(f"trained in {time.perf_counter() - t0:.1f} s"
          + ("" if model._plan is not None else f" (layer by layer: {model._plan_reason})"))
    start = vocab.encode(prompt)
    out = model.generate(start, num_generated=generated, temperature=0.7, seed=seed)
    print("generated:\n" + vocab.decode(np.asarray(out).reshape(-1)))
    loss = history.history["val_loss"][-1]
    if not loss < 2.5:
        print(f"the validation loss {loss:.3f} did not fall below 2.5", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
