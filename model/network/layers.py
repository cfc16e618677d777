"""The two AlexNet layers Keras does not ship: Caffe's LRN and the in-graph input normalization."""

from __future__ import annotations

import functools
from concurrent.futures import ThreadPoolExecutor

import keras
import tensorflow as tf

from model.data.preprocess import PreprocessSpec


@keras.saving.register_keras_serializable(package="finetune")
class LocalResponseNormalization(keras.layers.Layer):
    """Caffe's across-channel LRN (local_size 5, alpha 1e-4, beta 0.75, k 1).

    Caffe divides alpha by the window size and TensorFlow does not, hence alpha = 1e-4 / 5 here.

    `fused=True` computes the same formula as one XLA-compiled kernel: squares, the five-channel
    window sum and `d ** -0.75` as `rsqrt(d) * sqrt(rsqrt(d))`, always in float32, taking and giving
    the input's type. TensorFlow's LRN op makes a separate pass per step and has no bfloat16 kernel
    (casts around it are two more passes); fused, it is equal to 1e-6 in float32 and much faster
    (docs: Performance, `bench.layer_speed`). Exports keep the
    plain op, which every converter (ONNX, TFLite) knows.
    """

    def __init__(
        self,
        depth_radius: int = 2,
        alpha: float = 2e-05,
        beta: float = 0.75,
        bias: float = 1.0,
        fused: bool = False,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.depth_radius, self.alpha, self.beta, self.bias = depth_radius, alpha, beta, bias
        self.fused = fused
        if fused and beta != 0.75:
            raise ValueError(f"the fused LRN computes beta 0.75 only. Received: beta={beta}")

    def call(self, inputs):
        if self.fused:
            return _fused_lrn(inputs, self.depth_radius, self.alpha, self.bias)
        return tf.nn.local_response_normalization(
            inputs, depth_radius=self.depth_radius, alpha=self.alpha, beta=self.beta, bias=self.bias
        )

    def get_config(self):
        return {
            **super().get_config(),
            "depth_radius": self.depth_radius,
            "alpha": self.alpha,
            "beta": self.beta,
            "bias": self.bias,
            "fused": self.fused,
        }


@tf.function(jit_compile=True, autograph=False)
def _fused_lrn(inputs, radius: int, alpha: float, bias: float):
    """x · (bias + alpha · Σ x² over 2·radius + 1 channels) ** -0.75, in float32, in one kernel."""
    x = tf.cast(inputs, tf.float32)
    channels = x.shape[-1]
    padded = tf.pad(x * x, [[0, 0], [0, 0], [0, 0], [radius, radius]])
    window = tf.add_n([padded[..., i : i + channels] for i in range(2 * radius + 1)])
    inverse_root = tf.math.rsqrt(bias + alpha * window)
    return narrow_float32(x * (inverse_root * tf.sqrt(inverse_root)), inputs.dtype)


def narrow_float32(x, dtype):
    """`tf.cast(x, dtype)` for float32 `x`; to bfloat16 by `_round_to_bfloat16` (inside XLA kernels)."""
    return _round_to_bfloat16(x) if tf.as_dtype(dtype) == tf.bfloat16 else tf.cast(x, dtype)


@tf.custom_gradient
def _round_to_bfloat16(x):
    """float32 → bfloat16, rounded to nearest even by integer operations: bit for bit TensorFlow's
    cast, infinities included; NaNs stay NaN. XLA's CPU conversion kept the fused kernels' loops
    scalar, which made them far slower. The gradient is the cast's."""
    bits = tf.bitcast(x, tf.uint32)
    high = tf.bitwise.right_shift(bits, 16)
    rounded = tf.bitwise.right_shift(bits + 0x7FFF + tf.bitwise.bitwise_and(high, 1), 16)
    quiet_nan = tf.bitwise.bitwise_or(tf.bitwise.bitwise_and(high, 0x8000), 0x7FC0)  # what the cast gives
    upper = tf.where(tf.math.is_nan(x), quiet_nan, rounded)  # a NaN's payload could round to infinity
    return tf.bitcast(tf.cast(upper, tf.uint16), tf.bfloat16), lambda upstream: tf.cast(upstream, x.dtype)


@keras.saving.register_keras_serializable(package="finetune")
class GroupedConv2D(keras.layers.Conv2D):
    """Caffe's grouped convolution (conv2, conv4, conv5): TensorFlow's own grouped kernel where
    this machine has one and `native=True`, else one plain convolution per group.

    The weights are Keras' `groups` layout, kernel (h, w, in / groups, out), so files and exports
    are unchanged. Keras compiles grouped convolutions with XLA, which was slower than splitting
    per group. TensorFlow's grouped kernel exists only with oneDNN or cuDNN (without oneDNN:
    "Fused conv implementation does not support grouped convolutions"), so exports split, which
    runs anywhere; where it exists, the native kernel is the faster one.
    """

    def __init__(self, *args, native: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        self.native = native

    def convolution_op(self, inputs, kernel):
        strides, padding = list(self.strides), self.padding.upper()
        dilations = list(self.dilation_rate)
        if self.native and native_grouped_convolution(inputs.dtype.name):
            return tf.nn.conv2d(inputs, kernel, strides=strides, padding=padding, dilations=dilations)
        outputs = [
            tf.nn.conv2d(x, k, strides=strides, padding=padding, dilations=dilations)
            for x, k in zip(tf.split(inputs, self.groups, axis=-1), tf.split(kernel, self.groups, axis=-1))
        ]
        return tf.concat(outputs, axis=-1)

    def get_config(self):
        return {**super().get_config(), "native": self.native}


@functools.cache
def native_grouped_convolution(dtype: str = "float32") -> bool:
    """Whether TensorFlow runs and differentiates a grouped convolution in `dtype` here, in a graph
    and eagerly: tried once per dtype. In graphs, rewrites fuse convolution, bias and ReLU into a
    kernel that may have no groups (without oneDNN: "Fused conv implementation does not support
    grouped convolutions"); oneDNN hands bfloat16 back to TensorFlow's own kernels on CPUs without
    AVX-512, whose gradients have no groups.

    The probe runs in a thread of its own: eager and outside any caller's trace or gradient tape
    (it is first asked while a layer is traced; `tf.init_scope` would also pause the probe's tape).
    """
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(_grouped_convolution_runs, dtype).result()


def _grouped_convolution_runs(dtype: str) -> bool:
    def step(images, kernel, bias):
        with tf.GradientTape() as tape:
            tape.watch([images, kernel, bias])
            output = tf.nn.relu(tf.nn.bias_add(tf.nn.conv2d(images, kernel, 1, "VALID"), bias))
        return output, tape.gradient(output, [images, kernel, bias])

    inputs = [tf.ones(shape, dtype) for shape in ([1, 3, 3, 4], [1, 1, 2, 4], [4])]
    try:
        for run in (tf.function(step, autograph=False), step):
            _, gradients = run(*inputs)
            if any(gradient is None for gradient in gradients):
                return False
        return True
    except (tf.errors.UnimplementedError, tf.errors.InvalidArgumentError, tf.errors.NotFoundError):
        return False


@keras.saving.register_keras_serializable(package="finetune")
class ImageNormalization(keras.layers.Layer):
    """uint8/float RGB in 0..255 → minus the mean, in the network's channel order.

    The arithmetic is float32; the result has the layer's compute type. `fused=True` does the cast,
    the subtraction, the channel reversal and the cast to the compute type in one compiled pass
    (three separate passes over every pixel otherwise): for training; exports use the plain ops.
    """

    def __init__(
        self, mean_rgb=(123.68, 116.779, 103.939), channel_order: str = "BGR", fused: bool = False, **kwargs
    ):
        super().__init__(**kwargs)
        self.mean_rgb = tuple(float(v) for v in mean_rgb)
        self.channel_order = channel_order
        self.fused = fused

    def call(self, inputs):
        normalize = _fused_normalization if self.fused else _normalization
        return normalize(inputs, self.mean_rgb, self.channel_order == "BGR", self.compute_dtype)

    def get_config(self):
        return {
            **super().get_config(),
            "mean_rgb": list(self.mean_rgb),
            "channel_order": self.channel_order,
            "fused": self.fused,
        }


def _normalization(inputs, mean_rgb: tuple[float, ...], reverse: bool, dtype: str, cast=tf.cast):
    x = tf.cast(inputs, tf.float32) - tf.constant(mean_rgb, dtype=tf.float32)
    return cast(tf.reverse(x, axis=[-1]) if reverse else x, dtype)


@tf.function(jit_compile=True, autograph=False)
def _fused_normalization(inputs, mean_rgb: tuple[float, ...], reverse: bool, dtype: str):
    # narrow_float32 rather than tf.cast: XLA's own conversion keeps the loop scalar
    return _normalization(inputs, mean_rgb, reverse, dtype, cast=narrow_float32)


def image_normalization_layer(spec: PreprocessSpec, fused: bool = False, dtype: str = "float32"):
    """The in-graph half of preprocessing: float cast, mean subtraction, channel order."""
    return ImageNormalization(
        mean_rgb=spec.mean_rgb, channel_order=spec.channel_order, fused=fused, name="preprocess", dtype=dtype
    )
