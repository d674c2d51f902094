"""``python -m gradsmith.demo cnn``: train a small convolutional classifier from a folder of images.

The images are scikit-learn's handwritten digits (1797 of them, 8x8 pixels in 17 grey levels, 10 classes),
scaled to 16x16 and written as PNG files into a temporary folder, one sub-folder per class and a split for
validation, the layout ``flow_from_directory`` reads; without scikit-learn, generated images of ten kinds
of strokes stand in. The program is then the one Keras users write: ``ImageDataGenerator(rescale=1/255)``,
``flow_from_directory``, a Conv2D / MaxPooling2D stack, ``fit`` with validation data and ``evaluate``.
Exits non-zero if the model did not learn (validation accuracy under 90%).
"""
import os
import sys
import tempfile

import numpy as np

import gradsmith as keras
from gradsmith.layers import Conv2D, Dense, Dropout, Flatten, MaxPooling2D
from gradsmith.models import Sequential
from gradsmith.preprocessing.image import ImageDataGenerator

SIDE = 16


def load_images(seed=0):
    """(images uint8 (n, 16, 16), labels, description)."""
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        return generated_images(seed) + ("generated strokes (install scikit-learn for its handwritten digits)",)
    digits = load_digits()
    images = np.kron(digits.images, np.ones((2, 2)))  # 8x8 -> 16x16, each pixel doubled
    return (images * (255 / 16)).round().astype(np.uint8), digits.target, "scikit-learn's handwritten digits"


def generated_images(seed, n=1500):
    """Ten classes of strokes (bars, crosses, boxes at places) with noise."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 10, n)
    images = rng.integers(0, 60, (n, SIDE, SIDE)).astype(np.float64)
    for image, label in zip(images, labels):
        at = rng.integers(3, SIDE - 3)
        if label < 3:
            image[at - 1:at + 1, 2 + label * 2:SIDE - 2] = 255          # horizontal bars
        elif label < 6:
            image[2 + (label - 3) * 2:SIDE - 2, at - 1:at + 1] = 255    # vertical bars
        elif label == 6:
            np.fill_diagonal(image, 255)
        elif label == 7:
            np.fill_diagonal(np.fliplr(image), 255)
        elif label == 8:
            image[3:SIDE - 3, 3] = image[3:SIDE - 3, SIDE - 4] = image[3, 3:SIDE - 3] = image[SIDE - 4, 3:SIDE - 3] = 255
        else:
            image[at - 1:at + 1, :] = image[:, at - 1:at + 1] = 255
    return images.clip(0, 255).astype(np.uint8), labels


def write_folders(root, images, labels, seed=0, validation_share=0.2):
    """root/train/<class>/<i>.png and root/validation/<class>/<i>.png."""
    from PIL import Image

    order = np.random.default_rng(seed).permutation(len(images))
    cut = int(len(order) * (1 - validation_share))
    for split, part in (("train", order[:cut]), ("validation", order[cut:])):
        for i in part:
            folder = os.path.join(root, split, str(labels[i]))
            os.makedirs(folder, exist_ok=True)
            Image.fromarray(images[i], mode="L").save(os.path.join(folder, f"{i:04d}.png"))
    return os.path.join(root, "train"), os.path.join(root, "validation")


def main(epochs=12, seed=0):
    keras.utils.set_random_seed(seed)
    images, labels, source = load_images(seed)
    info = keras.cpu_info()
    print(f"gradsmith {keras.__version__} on {info['isa']} with {info['threads']} threads; {source}, written as "
          f"{len(images)} PNG files of {SIDE}x{SIDE} pixels")
    with tempfile.TemporaryDirectory(prefix="gradsmith-cnn-demo-") as root:
        train_dir, validation_dir = write_folders(root, images, labels, seed)
        flow = dict(target_size=(SIDE, SIDE), color_mode="grayscale", batch_size=32, class_mode="sparse")
        train_data = ImageDataGenerator(rescale=1.0 / 255).flow_from_directory(train_dir, seed=seed, **flow)
        validation_data = ImageDataGenerator(rescale=1.0 / 255).flow_from_directory(validation_dir, shuffle=False,
                                                                                    **flow)
        model = Sequential([
            Conv2D(16, (3, 3), activation="relu", padding="same", input_shape=(SIDE, SIDE, 1)),
            MaxPooling2D(2, 2),
            Conv2D(32, (3, 3), activation="relu"),
            MaxPooling2D(2, 2),
            Flatten(),
            Dense(64, activation="relu"),
            Dropout(0.3),
            Dense(train_data.num_classes, activation="softmax"),
        ])
        model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
        model.summary()
        model.fit(train_data, epochs=epochs, validation_data=validation_data, verbose=2)
        loss, accuracy = model.evaluate(validation_data, verbose=0)
    print(f"validation loss {loss:.4f}, validation accuracy {accuracy:.4f}")
    if not accuracy > 0.9:
        print("the model did not reach 90% validation accuracy", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
