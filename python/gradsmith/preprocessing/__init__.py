"""``gradsmith.preprocessing``: Keras's ``keras.preprocessing`` names: ``image`` (the legacy
``ImageDataGenerator`` pipeline) and ``image_dataset_from_directory``."""
from gradsmith.preprocessing import image
from gradsmith.preprocessing.image_dataset import image_dataset_from_directory

__all__ = ["image", "image_dataset_from_directory"]
