"""The seed CNN program end to end: JPEG files -> flow_from_directory -> fit, against its training step alone.

    python benchmarks/bench_cnn_program.py [--images 640] [--steps 10] [--epochs 2] [--augment]

Makes a temporary folder of JPEGs (two classes, 180..260 pixels a side; benchmarks/bench_images.py's), then
runs the README's CNN program unchanged but for its sizes: flow_from_directory(target_size=(150, 150),
batch_size=32, class_mode='binary'), the Conv2D/MaxPooling2D stack, fit(steps_per_epoch=--steps,
epochs=--epochs, validation_data=..., validation_steps=2). Prints training samples per second end to end
(decoding, resizing and augmenting in background threads while the steps run) and, for the same model, the
samples per second of fit on in-memory arrays: the step's appetite. When the two are close, the pipeline
keeps the kernels fed.
"""
import argparse
import os
import shutil
import sys
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "python"))
sys.path.insert(0, HERE)
import gradsmith as keras  # noqa: E402
from bench_images import AUGMENT, make_folder  # noqa: E402
from gradsmith.bench.cnn import SEED, gradsmith_model  # noqa: E402
from gradsmith.preprocessing.image import ImageDataGenerator  # noqa: E402


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--images", type=int, default=640)
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--augment", action="store_true")
    args = p.parse_args(argv)
    root = tempfile.mkdtemp(prefix="gradsmith-cnn-program-")
    try:
        make_folder(os.path.join(root, "train"), args.images, seed=0)
        make_folder(os.path.join(root, "validation"), 128, seed=1)
        keras.utils.set_random_seed(0)
        flow = dict(target_size=(150, 150), batch_size=32, class_mode="binary")
        train = ImageDataGenerator(rescale=1 / 255, **(AUGMENT if args.augment else {})).flow_from_directory(
            os.path.join(root, "train"), **flow)
        validation = ImageDataGenerator(rescale=1 / 255).flow_from_directory(os.path.join(root, "validation"), **flow)
        model = gradsmith_model(SEED)
        t0 = time.perf_counter()
        model.fit(train, steps_per_epoch=args.steps, epochs=args.epochs, validation_data=validation,
                  validation_steps=2, verbose=0)
        whole = time.perf_counter() - t0
        samples = args.steps * args.epochs * 32 + 2 * args.epochs * 32 / 3  # validation: a forward pass, ~1/3
        x = np.random.default_rng(0).random((args.steps * 32, 150, 150, 3), dtype=np.float32)
        y = (np.arange(len(x)) % 2).astype(np.float32)
        model.fit(x[:32], y[:32], verbose=0)
        t0 = time.perf_counter()
        model.fit(x, y, batch_size=32, epochs=args.epochs, shuffle=False, verbose=0)
        arrays = time.perf_counter() - t0
        print(f"seed CNN program, {'augmented' if args.augment else 'rescale only'}: "
              f"{samples / whole:.1f} samples/s end to end (training steps and validation); "
              f"{args.steps * args.epochs * 32 / arrays:.1f} samples/s from in-memory arrays")
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
