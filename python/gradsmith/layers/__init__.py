"""Layers with Keras 3's names and arguments, one module per family.

- ``base``: Layer, its weights, the registry by class name, serialize / deserialize, and Keras's config
  format that every layer's get_config / from_config speaks (the only description of a layer saving needs)
- ``input_layer`` (Input), ``core`` (Dense, Activation, Dropout, Flatten), ``activations`` (ReLU, LeakyReLU,
  ELU, Softmax), ``normalization`` (BatchNormalization, LayerNormalization), ``regularization``
  (GaussianNoise, GaussianDropout, SpatialDropout1D / 2D, Identity)
- ``convolutional`` (Conv1D, Conv2D), ``conv_variants`` (DepthwiseConv2D, SeparableConv2D, Conv2DTranspose),
  ``pooling`` (max, average and global pooling), ``reshaping`` (Reshape,
  RepeatVector, Permute, UpSampling, ZeroPadding, Cropping)
- ``embedding`` (Embedding), ``masking`` (Masking), ``recurrent`` (SimpleRNN, GRU, LSTM), ``wrappers`` (Bidirectional,
  TimeDistributed), ``merging`` (Add, Concatenate, ...: several inputs, for functional models)
- preprocessing: ``scaling`` (Rescaling, Normalization), ``image_augmentation`` (RandomFlip, RandomRotation,
  ...), ``text_preprocessing`` (TextVectorization, StringLookup: strings to ids, on the data before a model)

A new layer is a new class in its family's module: defining it registers it, so saved models find it.
A Keras layer gradsmith does not have is an AttributeError that says so.
"""
from gradsmith.layers.base import KerasTensor, Layer, NoCompiledForm, Weight, assign_weights, deserialize, get, serialize
from gradsmith.layers.base import _unique_name  # noqa: F401 (models name themselves with it)
from gradsmith.layers.core import Activation, Dense, Dropout, Flatten
from gradsmith.layers.core import _KERAS_ACTIVATION, _activation_name  # noqa: F401
from gradsmith.layers.input_layer import Input, InputLayer
from gradsmith.layers.normalization import BatchNormalization, LayerNormalization
from gradsmith.layers.convolutional import Conv1D, Conv2D, Convolution1D, Convolution2D
from gradsmith.layers.masking import Masking
from gradsmith.layers.conv_variants import Conv2DTranspose, DepthwiseConv2D, SeparableConv2D
from gradsmith.layers.pooling import (AveragePooling1D, AveragePooling2D, AvgPool1D, AvgPool2D, GlobalAveragePooling1D,
                                      GlobalAveragePooling2D, GlobalAvgPool1D, GlobalAvgPool2D, GlobalMaxPool1D,
                                      GlobalMaxPool2D, GlobalMaxPooling1D, GlobalMaxPooling2D, MaxPool1D, MaxPool2D,
                                      MaxPooling1D, MaxPooling2D)
from gradsmith.layers.reshaping import (Cropping1D, Cropping2D, Permute, RepeatVector, Reshape, UpSampling1D,
                                       UpSampling2D, ZeroPadding1D, ZeroPadding2D)
from gradsmith.layers.regularization import (GaussianDropout, GaussianNoise, Identity, SpatialDropout1D,
                                             SpatialDropout2D)
from gradsmith.layers.embedding import Embedding
from gradsmith.layers.recurrent import GRU, LSTM, SimpleRNN
from gradsmith.layers.wrappers import Bidirectional, TimeDistributed
from gradsmith.layers.scaling import Normalization, Rescaling
from gradsmith.layers.image_augmentation import (RandomBrightness, RandomContrast, RandomFlip, RandomRotation,
                                                 RandomTranslation, RandomZoom)
from gradsmith.layers.activations import ELU, LeakyReLU, ReLU, Softmax
from gradsmith.layers.text_preprocessing import StringLookup, TextVectorization
from gradsmith.layers.merging import (Add, Average, Concatenate, Maximum, Minimum, Multiply, Subtract, add, average,
                                      concatenate, maximum, minimum, multiply, subtract)

__all__ = ["Layer", "InputLayer", "Input", "KerasTensor", "Dense", "Activation", "Dropout", "Flatten",
           "BatchNormalization", "Conv1D", "Conv2D", "Convolution1D", "Convolution2D", "MaxPooling1D", "MaxPooling2D",
           "AveragePooling1D", "AveragePooling2D", "GlobalMaxPooling1D", "GlobalMaxPooling2D", "GlobalAveragePooling1D",
           "GlobalAveragePooling2D", "MaxPool1D", "MaxPool2D", "AvgPool1D", "AvgPool2D", "GlobalMaxPool1D",
           "GlobalMaxPool2D", "GlobalAvgPool1D", "GlobalAvgPool2D", "Reshape", "Embedding", "SimpleRNN", "GRU",
           "LSTM", "Bidirectional", "TimeDistributed", "Add", "Subtract",
           "Multiply", "Average", "Maximum", "Minimum", "Concatenate", "add", "subtract", "multiply", "average", "maximum",
           "minimum", "concatenate", "TextVectorization",
           "StringLookup", "ReLU", "LeakyReLU", "ELU", "Softmax", "Rescaling",
           "Normalization", "RandomFlip", "RandomRotation", "RandomZoom", "RandomTranslation", "RandomContrast",
           "RandomBrightness", "LayerNormalization", "RepeatVector", "Permute", "UpSampling1D",
           "UpSampling2D", "ZeroPadding1D", "ZeroPadding2D", "Cropping1D", "Cropping2D", "GaussianNoise",
           "GaussianDropout", "SpatialDropout1D", "SpatialDropout2D", "Identity", "DepthwiseConv2D", "SeparableConv2D",
           "Conv2DTranspose", "Masking", "get", "serialize", "deserialize"]


def __getattr__(name):
    """A Keras layer name gradsmith lacks: say so, with what there is."""
    if name[:1].isupper():
        raise AttributeError(f"gradsmith.layers has no {name!r} yet; its layers are: {', '.join(sorted(__all__))}")
    raise AttributeError(f"module 'gradsmith.layers' has no attribute {name!r}")
