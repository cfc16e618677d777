"""fc6 and fc7's products in the form that is fastest where they run.

Training (`FastDense`): large batches by XLA's kernel, on the CPUs where that is faster. Networks
that only predict (`ServingDense`): the kernel held transposed, the layout oneDNN reads fastest.

On x86 CPUs without AVX-512, in float32, XLA's kernel multiplied large batches by fc6's and fc7's
kernels faster than oneDNN, which is as fast only with the kernel stored transposed; that would
change every checkpoint and export. At 16-32 rows oneDNN was as fast or faster, so smaller batches
keep it. AVX-512 CPUs and GPUs keep TensorFlow's kernels for training.
"""

from __future__ import annotations

import functools

import keras
import tensorflow as tf

XLA_MIN_ROWS = 64  # batches of at least this many rows take the XLA product


@keras.saving.register_keras_serializable(package="finetune")
class FastDense(keras.layers.Dense):
    """`keras.layers.Dense` whose product takes XLA's kernel for batches of `XLA_MIN_ROWS` or more
    rows where `xla_products_faster` (or `xla_products=True`) says so; the same weights and the
    same result to float32 rounding. Its gradients are TensorFlow's two products, as Dense's."""

    def __init__(self, *args, xla_products: bool | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.xla_products = xla_products

    def call(self, inputs, training=None):
        use_xla = self.xla_products
        if use_xla is None:
            use_xla = xla_products_faster(self.compute_dtype)
        if not use_xla:
            return super().call(inputs, training)
        x = large_batch_product(inputs, self.kernel)
        if self.bias is not None:
            x = tf.nn.bias_add(x, self.bias)
        return x if self.activation is None else self.activation(x)

    def get_config(self):
        return {**super().get_config(), "xla_products": self.xla_products}


def large_batch_product(x, kernel):
    """x @ kernel: XLA's kernel from `XLA_MIN_ROWS` rows, TensorFlow's below."""
    kernel = tf.convert_to_tensor(kernel)  # its value: the tape takes the gradient on to the variable
    return _by_rows(x, XLA_MIN_ROWS, lambda: _xla_product(x, kernel), lambda: tf.matmul(x, kernel))


def _by_rows(x, min_rows: int, many, few):
    """`many()` for batches of at least `min_rows` rows, else `few()`: chosen while tracing where the
    batch size is known, by a `tf.cond` where it is not (a signature for any batch size)."""
    rows = x.shape[0]
    if rows is not None:
        return many() if rows >= min_rows else few()
    return tf.cond(tf.shape(x)[0] >= min_rows, many, few)


_compiled_product = tf.function(lambda x, kernel: tf.matmul(x, kernel), jit_compile=True, autograph=False)


@tf.custom_gradient
def _xla_product(x, kernel):
    def gradients(upstream):
        # what TensorFlow's MatMul gradient computes; a graph prunes the one nothing uses
        return tf.matmul(upstream, kernel, transpose_b=True), tf.matmul(x, upstream, transpose_a=True)

    return _compiled_product(x, kernel), gradients


@functools.cache
def xla_products_faster(dtype: str) -> bool:
    """float32 on an x86 CPU without AVX-512 and without a GPU: where XLA's product was measured
    faster (module docstring)."""
    from model.network.cpu_kernels import is_x86
    from model.network.precision import cpu_flags

    if dtype != "float32" or not is_x86():
        return False
    return "avx512f" not in cpu_flags() and not tf.config.list_physical_devices("GPU")


SERVING_WIDE_ROWS = 6  # float32 batches of at least this many rows take (kernel · xᵀ)ᵀ


@keras.saving.register_keras_serializable(package="finetune")
class ServingDense(keras.layers.Layer):
    """fc6 and fc7 for a network that only predicts: the kernel held transposed, (units, inputs),
    the layout oneDNN reads fastest. The same values and results as `Dense` to float32 rounding.

    Transposed, fc6's bfloat16 product took about half the time at every batch size up to 32; in
    float32 `(kernel · xᵀ)ᵀ` is the fast form from 6 rows and `x · kernelᵀ` below
    (`serving_product`). Training and exports keep Keras' layout: checkpoints, best-weights files
    and exports are unchanged, and a square fc7 kernel could otherwise load silently transposed.
    """

    def __init__(
        self, units: int, activation=None, kernel_initializer="zeros", bias_initializer="zeros", **kwargs
    ):
        super().__init__(**kwargs)
        self.units = units
        self.activation = keras.activations.get(activation)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.bias_initializer = keras.initializers.get(bias_initializer)

    def build(self, input_shape):
        given = self.kernel_initializer  # gives Keras' (inputs, units) layout, as files hold it

        def initial(shape, dtype=None):
            return keras.ops.transpose(given(tuple(reversed(shape)), dtype=dtype))

        self.kernel = self.add_weight(
            name="kernel", shape=(self.units, input_shape[-1]), initializer=initial, trainable=False
        )
        self.bias = self.add_weight(
            name="bias", shape=(self.units,), initializer=self.bias_initializer, trainable=False
        )

    def call(self, inputs):
        return self.activation(tf.nn.bias_add(serving_product(inputs, self.kernel), self.bias))

    def get_config(self):
        return {
            **super().get_config(),
            "units": self.units,
            "activation": keras.activations.serialize(self.activation),
        }


def serving_product(x, kernel_t):
    """x · kernel_tᵀ: as `(kernel_t · xᵀ)ᵀ` for float32 batches of `SERVING_WIDE_ROWS` or more rows,
    where oneDNN streams the large kernel as its source once; else as `x · kernel_tᵀ`."""

    def wide():
        return tf.transpose(tf.matmul(kernel_t, x, transpose_b=True))

    def narrow():
        return tf.matmul(x, kernel_t, transpose_b=True)

    return _by_rows(x, SERVING_WIDE_ROWS, wide, narrow) if x.dtype == tf.float32 else narrow()
