"""The demos run and learn: ``python -m gradsmith.demo`` (the dense classifier, also run by CI) and
``python -m gradsmith.demo cnn`` (a CNN from a folder of images through flow_from_directory)."""
import numpy as np

from gradsmith import demo, demo_cnn


def test_cnn_demo_writes_an_image_folder_keras_reads(tmp_path):
    images, labels, _ = demo_cnn.load_images(0)
    assert images.dtype == np.uint8 and images.shape[1:] == (demo_cnn.SIDE, demo_cnn.SIDE)
    train, validation = demo_cnn.write_folders(str(tmp_path), images[:60], labels[:60])
    from gradsmith.preprocessing.image import ImageDataGenerator

    flow = ImageDataGenerator(rescale=1 / 255).flow_from_directory(
        train, target_size=(demo_cnn.SIDE, demo_cnn.SIDE), color_mode="grayscale", class_mode="sparse", shuffle=False)
    x, y = flow[0]
    assert x.shape[1:] == (demo_cnn.SIDE, demo_cnn.SIDE, 1) and 0 <= x.min() and x.max() <= 1
    assert flow.samples == 48 and set(flow.class_indices) <= {str(d) for d in range(10)}


def test_cnn_demo_learns_in_a_few_epochs(capsys):
    assert demo_cnn.main(epochs=6) == 0
    assert "validation accuracy" in capsys.readouterr().out


def test_demo_rejects_unknown_arguments(capsys):
    assert demo.run(["mlp"]) == 2 and "usage" in capsys.readouterr().err


def test_text_demo_trains_a_gru_and_generates(capsys, monkeypatch):
    from gradsmith import demo_text

    text = demo_text.load_text()
    assert len(text) == demo_text.CHARACTERS and "\n====" not in text
    monkeypatch.setattr(demo_text, "CHARACTERS", 8_000)
    demo_text.main(epochs=1, generated=40)  # too short to learn: only that it runs end to end
    out = capsys.readouterr().out
    assert "generated:" in out and "layer by layer" not in out  # the compiled step trained it
