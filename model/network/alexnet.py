"""AlexNet exactly as Caffe's `bvlc_alexnet` deploy definition, with named layers conv1 … fc8."""

from __future__ import annotations

from collections.abc import Collection, Mapping

import keras
import numpy as np

from model.data.preprocess import PreprocessSpec
from model.network.dense import FastDense, ServingDense
from model.network.layers import GroupedConv2D, LocalResponseNormalization, image_normalization_layer
from model.network.layout import WEIGHT_LAYERS

FEATURE_SIZE = 9216  # 6 · 6 · 256, flattened in HWC order


def build_alexnet(
    num_classes: int = 1000,
    dropout_rate: float = 0.5,
    preprocess: PreprocessSpec | None = None,
    seed: int | None = None,
    dtype_policy: str | None = None,
    *,
    fast_kernels: bool = False,
    predict_only: bool = False,
    initialize: Collection[str] = WEIGHT_LAYERS,
    start_weights: Mapping[str, tuple[np.ndarray, np.ndarray]] | None = None,
) -> keras.Model:
    """Build AlexNet taking RGB images in 0..255, shape (N, 227, 227, 3), returning fc8 logits.

    `dropout_rate` is the probability of dropping. The weights of the `initialize` layers start
    He-initialised (what `random` and `reinit_layers` train from); the others start from
    `start_weights` (kernel, bias) by layer name, shapes checked by the caller (`check_shapes`), or
    at zero. Created from their values, loaded variables are written once, not zeroed and then
    assigned: one pass over AlexNet's 61M weights instead of two.
    `dtype_policy="mixed_float16"` computes the convolutions and dense layers in half precision; the
    input normalization, LRN and the logits stay float32. `fast_kernels` computes with what is
    fastest here but not portable (see `model.network.layers`): LRN and the input normalization compiled
    by XLA, grouped convolutions in TensorFlow's grouped kernel, fc6 and fc7's large-batch products
    by XLA on CPUs where that is faster (`model.network.dense`). For training and bfloat16
    serving; exports use plain ops that every runtime and converter knows. `predict_only`, for a
    network that only predicts: the layers computing in half precision hold their weights in it,
    cast once here rather than at every call, and fc6 and fc7 hold their kernels
    transposed (`model.network.dense.ServingDense`). Training keeps float32 weights in Keras' layout: its
    updates would be lost in bfloat16's 8-bit mantissa, and checkpoints keep one layout.
    """
    _check_arguments(num_classes, dropout_rate)
    spec = preprocess or PreprocessSpec()
    if spec.image_size != 227:
        raise ValueError(f"AlexNet takes 227×227 input. Received: image_size={spec.image_size}")
    policy = dtype_policy or keras.config.dtype_policy().name
    make = _LayerMaker(policy, fast_kernels, predict_only, initialize, start_weights)

    inputs = keras.Input(shape=(227, 227, 3), name="image")
    x = image_normalization_layer(spec, fast_kernels, policy if fast_kernels else "float32")(inputs)
    x = make.conv("conv1", 96, 11, strides=4, padding="valid")(x)
    x = make.pool("pool1")(make.lrn("lrn1")(x))
    x = make.conv("conv2", 256, 5, groups=2)(x)
    x = make.pool("pool2")(make.lrn("lrn2")(x))
    x = make.conv("conv3", 384, 3)(x)
    x = make.conv("conv4", 384, 3, groups=2)(x)
    x = make.conv("conv5", 256, 3, groups=2)(x)
    x = make.pool("pool5")(x)
    x = keras.layers.Flatten(name="flatten", dtype=policy)(x)
    x = make.large_dense("fc6")(x)
    x = keras.layers.Dropout(dropout_rate, seed=seed, name="dropout6", dtype=policy)(x)
    x = make.large_dense("fc7")(x)
    seed7 = None if seed is None else seed + 1
    x = keras.layers.Dropout(dropout_rate, seed=seed7, name="dropout7", dtype=policy)(x)
    logits = make.dense("fc8", num_classes, dtype="float32")(x)
    return keras.Model(inputs, logits, name="alexnet")


def _check_arguments(num_classes, dropout_rate) -> None:
    if not isinstance(num_classes, int) or isinstance(num_classes, bool) or num_classes < 2:
        raise ValueError(
            f"num_classes must be an integer of at least 2. Received: num_classes={num_classes!r}"
        )
    if not 0.0 <= dropout_rate < 1.0:
        raise ValueError(f"dropout_rate must be in [0, 1). Received: dropout_rate={dropout_rate!r}")


class _LayerMaker:
    """AlexNet's layers, each named, in the kernels and types `build_alexnet` asked for."""

    def __init__(self, policy: str, fast_kernels: bool, predict_only: bool, initialize, start_weights):
        self.policy, self.fast_kernels, self.predict_only = policy, fast_kernels, predict_only
        self.weights_policy = policy.removeprefix("mixed_") if predict_only else policy  # same compute type
        self.initialize, self.start_weights = initialize, start_weights

    def initializers(self, name: str) -> dict:
        he_normal = keras.initializers.HeNormal()  # drawn for every layer: the seeds stay as they were
        if name in self.initialize:
            return {"kernel_initializer": he_normal}
        if self.start_weights and name in self.start_weights:
            kernel, bias = self.start_weights[name]
            return {"kernel_initializer": _values(kernel), "bias_initializer": _values(bias)}
        return {"kernel_initializer": "zeros"}

    def conv(self, name, filters, size, strides=1, padding="same", groups=1):
        grouped = {"native": self.fast_kernels} if groups > 1 else {}
        return (GroupedConv2D if groups > 1 else keras.layers.Conv2D)(
            filters,
            size,
            strides=strides,
            padding=padding,
            groups=groups,
            activation="relu",
            name=name,
            dtype=self.weights_policy,
            **self.initializers(name),
            **grouped,
        )

    def lrn(self, name):
        # float32 math under any policy: float16 squares overflow above 256, and GPUs have no float16
        # LRN; the fused kernel computes in float32 inside, so it takes the policy's type unconverted.
        dtype = self.policy if self.fast_kernels else "float32"
        return LocalResponseNormalization(name=name, fused=self.fast_kernels, dtype=dtype)

    def dense(self, name, units, **kwargs):
        return keras.layers.Dense(units, name=name, **self.initializers(name), **kwargs)

    def large_dense(self, name):  # fc6, fc7: their products are most of a training step (dense.py)
        kind = ServingDense if self.predict_only else FastDense if self.fast_kernels else keras.layers.Dense
        return kind(4096, name=name, activation="relu", dtype=self.weights_policy, **self.initializers(name))

    def pool(self, name):
        return keras.layers.MaxPooling2D(3, strides=2, padding="valid", name=name, dtype=self.policy)


def _values(array):
    """An initializer that gives `array` (as float32, or cast to the variable's type): the variable
    is created holding it. A float32 tensor is taken as it is for a float32 variable, which then
    shares its memory until either is written."""

    def initial(shape, dtype=None):
        if getattr(array, "dtype", None) == "float32" and keras.ops.is_tensor(array):
            value = array
        else:
            value = keras.ops.convert_to_tensor(np.asarray(array, np.float32))
        return value if dtype in (None, "float32") else keras.ops.cast(value, dtype)

    return initial


def split_layers(
    model: keras.Model, first_trainable: str
) -> tuple[list[keras.layers.Layer], list[keras.layers.Layer]]:
    """Split the chain of layers into a frozen prefix and a head that starts at `first_trainable`.

    The cut never lies above a dropout layer: dropout draws anew each step, so everything from the
    first dropout up runs in the head, and training on the cached prefix equals training without it.
    """
    chain = [layer for layer in model.layers if not isinstance(layer, keras.layers.InputLayer)]
    names = [layer.name for layer in chain]
    if first_trainable not in names:
        raise ValueError(f"unknown layer {first_trainable!r}; expected one of {WEIGHT_LAYERS}")
    dropouts = [i for i, layer in enumerate(chain) if isinstance(layer, keras.layers.Dropout)]
    cut = min([names.index(first_trainable), *dropouts])
    return chain[:cut], chain[cut:]


def chain_model(
    layers: list[keras.layers.Layer], input_shape: tuple[int, ...], name: str, dtype: str = "float32"
) -> keras.Model:
    """A model that applies `layers` (shared, not copied) in order to an input of `input_shape`. Its
    input keeps `dtype`: a model casts what it is given to its input's type first."""
    inputs = keras.Input(shape=input_shape, name=f"{name}_input", dtype=dtype)
    x = inputs
    for layer in layers:
        x = layer(x)
    return keras.Model(inputs, x, name=name)
