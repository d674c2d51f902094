"""Throughput of the image input pipeline on its own (no model): images per second.

    python benchmarks/bench_images.py [--images 512] [--size 150] [--workers 1,2,4] [--repeats 3]

Makes its own temporary folder of JPEG photos-like images (two classes, sources 180..260 pixels a side,
quality 90) and times whole epochs of:
  * flow_from_directory(target_size=(size, size), batch_size=32, class_mode='binary') with
    ImageDataGenerator(rescale=1/255) and with the usual augmentations (rotation 40, shifts 0.2,
    shear 0.2, zoom 0.2, horizontal flip), read the way fit reads them (gradsmith.data_adapter's
    PyDatasetBatches: the next batches made by background threads), for each worker count;
    "inline" is the same batches made one after another in the calling thread (it[i]);
  * image_dataset_from_directory(image_size=(size, size)) (bilinear resize as tf.image.resize).
Prints, for each case, the median of --repeats epochs: images per second (wall clock) and CPU milliseconds
per image (all threads; a loaded machine changes the first, hardly the second).
"""
import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "python"))
from gradsmith import data_adapter  # noqa: E402
from gradsmith.preprocessing.image import ImageDataGenerator  # noqa: E402
from gradsmith.preprocessing.image_dataset import image_dataset_from_directory  # noqa: E402

AUGMENT = dict(rotation_range=40, width_shift_range=0.2, height_shift_range=0.2, shear_range=0.2, zoom_range=0.2,
               horizontal_flip=True)


def make_folder(root, n, seed=0):
    from PIL import Image
    rng = np.random.RandomState(seed)
    for i in range(n):
        cls = ("cats", "dogs")[i % 2]
        os.makedirs(os.path.join(root, cls), exist_ok=True)
        h, w = rng.randint(180, 261, 2)
        yy, xx = np.mgrid[0:h, 0:w]
        base = np.stack([(yy * 3 + xx) % 256, (xx * 2) % 256, (yy + 2 * xx) % 256], -1)
        img = np.clip(base + rng.randint(-30, 30, (h, w, 3)), 0, 255).astype(np.uint8)
        Image.fromarray(img).save(os.path.join(root, cls, f"{i:05d}.jpg"), quality=90)


def epoch_seconds(make_epoch, repeats):
    """(median wall seconds, median process CPU seconds) of an epoch. The CPU time (all threads) per image
    is what a core spends on it, whatever else the machine is running."""
    walls, cpus = [], []
    for _ in range(repeats):
        c0, t0 = time.process_time(), time.perf_counter()
        make_epoch()
        walls.append(time.perf_counter() - t0)
        cpus.append(time.process_time() - c0)
    return statistics.median(walls), statistics.median(cpus)


def report(label, n, times):
    wall, cpu = times
    print(f"  {label:52s} {n / wall:8.0f} images/s   {1e3 * cpu / n:6.2f} CPU ms/image")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=512)
    ap.add_argument("--size", type=int, default=150)
    ap.add_argument("--workers", default="1,2,4")
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    workers = [int(w) for w in args.workers.split(",")]
    tmp = tempfile.mkdtemp(prefix="bench_images_")
    try:
        make_folder(tmp, args.images)
        print(f"{args.images} JPEGs (180..260 px a side) -> {args.size}x{args.size}, batch 32, "
              f"{os.cpu_count()} CPUs; median of {args.repeats} epochs")
        for name, kw in (("rescale only", {}), ("augmented", AUGMENT)):
            it = ImageDataGenerator(rescale=1. / 255, **kw).flow_from_directory(
                tmp, target_size=(args.size, args.size), batch_size=32, class_mode="binary", seed=0)

            def inline():
                for i in range(len(it)):
                    it[i]
                it.on_epoch_end()

            report(f"flow_from_directory, {name}, inline", args.images, epoch_seconds(inline, args.repeats))
            for w in workers:
                it._prefetch_workers = w
                adapter = data_adapter.PyDatasetBatches(it)
                report(f"flow_from_directory, {name}, {w} worker{'s' if w > 1 else ''}", args.images,
                       epoch_seconds(lambda: sum(1 for _ in adapter), args.repeats))
        ds = image_dataset_from_directory(tmp, image_size=(args.size, args.size), batch_size=32, seed=0,
                                          verbose=False)
        report("image_dataset_from_directory (bilinear)", args.images,
               epoch_seconds(lambda: sum(1 for _ in ds), args.repeats))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
