"""The two AlexNet layers Keras does not ship: Caffe's LRN and the in-graph input normalization."""

from __future__ import annotations

import functools

import keras
import tensorflow as tf


@keras.saving.register_keras_serializable(package="finetune")
class LocalResponseNormalization(keras.layers.Layer):
    """Caffe's across-channel LRN (local_size 5, alpha 1e-4, beta 0.75, k 1).

    Caffe divides alpha by the window size and TensorFlow does not, hence alpha = 1e-4 / 5 here.

    `fused=True` computes the same formula as one XLA-compiled kernel: squares, the five-channel
    window sum and `d ** -0.75` as `rsqrt(d) * sqrt(rsqrt(d))`, always in float32, taking and giving
    the input's type. TensorFlow's LRN op makes a separate pass per step and has no bfloat16 kernel
    (casts around it are two more passes): fused, the frozen prefix ran 1.5× as fast in bfloat16
    and 1.25× in float32 on a 2-core AVX-512/AMX CPU, equal to 1e-6 in float32. Exports keep the
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


@tf.function(jit_compile=True)
def _fused_lrn(inputs, radius: int, alpha: float, bias: float):
    """x · (bias + alpha · Σ x² over 2·radius + 1 channels) ** -0.75, in float32, in one kernel."""
    x = tf.cast(inputs, tf.float32)
    channels = x.shape[-1]
    padded = tf.pad(x * x, [[0, 0], [0, 0], [0, 0], [radius, radius]])
    window = tf.add_n([padded[..., i : i + channels] for i in range(2 * radius + 1)])
    inverse_root = tf.math.rsqrt(bias + alpha * window)
    return tf.cast(x * (inverse_root * tf.sqrt(inverse_root)), inputs.dtype)


@keras.saving.register_keras_serializable(package="finetune")
class GroupedConv2D(keras.layers.Conv2D):
    """Caffe's grouped convolution (conv2, conv4, conv5): TensorFlow's own grouped kernel where
    this machine has one and `native=True`, else one plain convolution per group.

    The weights are Keras' `groups` layout, kernel (h, w, in / groups, out), so files and exports
    are unchanged. Keras compiles grouped convolutions with XLA: the whole prefix ran at 197 img/s
    in float32 and 204 in mixed bfloat16 that way, against 219 and 262 split per group, on an
    AVX-512/AMX CPU. TensorFlow's grouped kernel exists only with oneDNN or cuDNN (without oneDNN:
    "Fused conv implementation does not support grouped convolutions"), so exports split, which
    runs anywhere; with oneDNN the native kernel made the bfloat16 prefix 1.28× as fast.
    """

    def __init__(self, *args, native: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        self.native = native

    def convolution_op(self, inputs, kernel):
        strides, padding = list(self.strides), self.padding.upper()
        dilations = list(self.dilation_rate)
        if self.native and native_grouped_convolution():
            return tf.nn.conv2d(inputs, kernel, strides=strides, padding=padding, dilations=dilations)
        outputs = [
            tf.nn.conv2d(x, k, strides=strides, padding=padding, dilations=dilations)
            for x, k in zip(tf.split(inputs, self.groups, axis=-1), tf.split(kernel, self.groups, axis=-1))
        ]
        return tf.concat(outputs, axis=-1)

    def get_config(self):
        return {**super().get_config(), "native": self.native}


@functools.cache
def native_grouped_convolution() -> bool:
    """Whether TensorFlow runs (and differentiates) a grouped convolution here: tried once, in a
    graph, since graph rewrites fuse convolution, bias and ReLU into a kernel that may not have
    groups (without oneDNN: "Fused conv implementation does not support grouped convolutions")."""

    @tf.function
    def grouped_step(images, kernel, bias):
        with tf.GradientTape() as tape:
            tape.watch([images, kernel, bias])
            output = tf.nn.relu(tf.nn.bias_add(tf.nn.conv2d(images, kernel, 1, "VALID"), bias))
        return output, tape.gradient(output, [images, kernel, bias])

    try:
        with tf.init_scope():  # run it now, also when first asked while a caller is being traced
            grouped_step(tf.ones([1, 3, 3, 4]), tf.ones([1, 1, 2, 4]), tf.ones([4]))
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


def _normalization(inputs, mean_rgb: tuple[float, ...], reverse: bool, dtype: str):
    x = tf.cast(inputs, tf.float32) - tf.constant(mean_rgb, dtype=tf.float32)
    return tf.cast(tf.reverse(x, axis=[-1]) if reverse else x, dtype)


_fused_normalization = tf.function(_normalization, jit_compile=True)
