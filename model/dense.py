"""fc6 and fc7 with their large-batch products compiled by XLA, on the CPUs where that is faster.

On 2 cores of an AVX2-only AMD EPYC (family 25, float32, oneDNN on), oneDNN multiplied 128 rows by
fc7's 4096×4096 kernel in 61-69 ms, XLA's kernel in 42-44 ms; fc6 (9216×4096) took 156 against
105 ms, 256 rows 289 against 169 ms. oneDNN is as fast only with the kernel stored transposed,
which would change every checkpoint and export. At 16-32 rows (served predictions) oneDNN was as
fast or faster (fc7 at 16 rows: 14 against 28 ms), so smaller batches keep it. Not measured on
AVX-512 CPUs or GPUs, which keep TensorFlow's kernels.
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
    rows = x.shape[0]
    if rows is not None:
        return _xla_product(x, kernel) if rows >= XLA_MIN_ROWS else tf.matmul(x, kernel)
    return tf.cond(
        tf.shape(x)[0] >= XLA_MIN_ROWS, lambda: _xla_product(x, kernel), lambda: tf.matmul(x, kernel)
    )


_compiled_product = tf.function(lambda x, kernel: tf.matmul(x, kernel), jit_compile=True)


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
    from model.cpu_kernels import is_x86
    from model.precision import cpu_flags

    if dtype != "float32" or not is_x86():
        return False
    return "avx512f" not in cpu_flags() and not tf.config.list_physical_devices("GPU")
