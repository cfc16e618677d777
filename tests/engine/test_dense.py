import numpy as np
import pytest

from model.network.dense import SERVING_WIDE_ROWS, XLA_MIN_ROWS, FastDense, ServingDense, xla_products_faster


def _layers(units=96, inputs=80):
    """A plain Dense and a FastDense that always takes XLA's product, with the same weights."""
    import keras

    plain = keras.layers.Dense(units, activation="relu", name="plain")
    fast = FastDense(units, activation="relu", name="fast", xla_products=True)
    for layer in (plain, fast):
        layer.build((None, inputs))
    rng = np.random.default_rng(3)
    weights = [rng.standard_normal((inputs, units)).astype(np.float32), rng.standard_normal(units) * 0.1]
    plain.set_weights(weights)
    fast.set_weights(weights)
    return plain, fast


def _compiles(function, spec) -> bool:
    """Whether the traced graph calls a function that XLA must compile."""
    graph = function.get_concrete_function(spec).graph.as_graph_def()
    nodes = [*graph.node, *(n for f in graph.library.function for n in f.node_def)]
    return any(node.attr["_XlaMustCompile"].b for node in nodes if "_XlaMustCompile" in node.attr)


@pytest.mark.parametrize("rows", [XLA_MIN_ROWS, 7])
@pytest.mark.parametrize("traced", [False, True])
def test_fast_dense_computes_dense_and_its_gradients(rows, traced):
    """Eagerly, and traced for any batch size (the training step's signature), which decides by
    the rows at run time: the outputs and all three gradients of Dense, to float32 rounding."""
    import tensorflow as tf

    plain, fast = _layers()
    x = tf.constant(np.random.default_rng(4).standard_normal((rows, 80)), tf.float32)
    upstream = tf.constant(np.random.default_rng(5).standard_normal((rows, 96)), tf.float32)

    def forward_and_gradients(layer, x):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = layer(x)
            loss = tf.reduce_sum(y * upstream[: tf.shape(x)[0]])
        return [y, *tape.gradient(loss, [x, layer.kernel, layer.bias])]

    results = []
    for layer in (plain, fast):
        run = lambda x, layer=layer: forward_and_gradients(layer, x)  # noqa: E731
        if traced:
            run = tf.function(run, input_signature=[tf.TensorSpec((None, 80), tf.float32)])
        results.append([t.numpy() for t in run(x)])
    for want, got in zip(*results):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-4 * np.abs(want).max())


def test_fast_dense_takes_xlas_product_from_the_minimum_rows_only():
    import tensorflow as tf

    plain, fast = _layers()
    forward = tf.function(lambda x: fast(x))
    assert _compiles(forward, tf.TensorSpec((XLA_MIN_ROWS, 80), tf.float32))
    assert not _compiles(forward, tf.TensorSpec((XLA_MIN_ROWS - 1, 80), tf.float32))
    assert _compiles(forward, tf.TensorSpec((None, 80), tf.float32))  # decided at run time
    assert not _compiles(tf.function(lambda x: plain(x)), tf.TensorSpec((XLA_MIN_ROWS, 80), tf.float32))
    off = FastDense(96, xla_products=False)
    assert not _compiles(tf.function(lambda x: off(x)), tf.TensorSpec((XLA_MIN_ROWS, 80), tf.float32))


@pytest.mark.parametrize(
    ("machine", "flags", "dtype", "expected"),
    [
        ("x86_64", "fpu avx2 fma", "float32", True),
        ("x86_64", "fpu avx2 fma avx512f", "float32", False),
        ("x86_64", "fpu avx2 fma", "bfloat16", False),
        ("aarch64", "fp asimd", "float32", False),
    ],
)
def test_xla_products_only_where_they_were_measured_faster(monkeypatch, machine, flags, dtype, expected):
    import platform

    import model.network.precision

    monkeypatch.setattr(platform, "machine", lambda: machine)
    monkeypatch.setattr(model.network.precision, "cpu_flags", lambda: set(flags.split()))
    assert xla_products_faster.__wrapped__(dtype) is expected


def test_training_builds_take_fast_dense_for_fc6_and_fc7_only():
    from model.network.alexnet import build_alexnet

    fast = build_alexnet(2, fast_kernels=True)
    kinds = [type(fast.get_layer(name)).__name__ for name in ("fc6", "fc7", "fc8")]
    assert kinds == ["FastDense", "FastDense", "Dense"]
    assert not any(isinstance(layer, FastDense) for layer in build_alexnet(2).layers)  # exports


def _serving_layers(dtype, units=96, inputs=80):
    """A plain Dense and a ServingDense, its kernel given in Keras' (inputs, units) layout."""
    import keras

    rng = np.random.default_rng(6)
    kernel, bias = rng.standard_normal((inputs, units)), rng.standard_normal(units) * 0.1
    plain = keras.layers.Dense(units, activation="relu", dtype=dtype)
    plain.build((None, inputs))
    plain.set_weights([kernel, bias])
    serving = ServingDense(
        units,
        activation="relu",
        dtype=dtype,
        kernel_initializer=keras.initializers.Constant(kernel),
        bias_initializer=keras.initializers.Constant(bias),
    )
    serving.build((None, inputs))
    return plain, serving


@pytest.mark.parametrize("rows", [1, SERVING_WIDE_ROWS - 1, SERVING_WIDE_ROWS, 16])
@pytest.mark.parametrize("traced", [False, True])
@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_serving_dense_computes_dense(rows, traced, dtype):
    """Eagerly, and traced for any batch size (the predictors' signature): Dense's outputs, to the
    rounding of the type, from a kernel held transposed."""
    import tensorflow as tf

    plain, serving = _serving_layers(dtype)
    assert tuple(serving.kernel.shape) == (96, 80) and not serving.trainable_weights
    np.testing.assert_array_equal(np.asarray(serving.kernel).T, np.asarray(plain.kernel))
    x = tf.constant(np.random.default_rng(7).standard_normal((rows, 80)), dtype)
    outputs = []
    for layer in (plain, serving):
        run = layer
        if traced:
            run = tf.function(layer, input_signature=[tf.TensorSpec((None, 80), dtype)])
        outputs.append(tf.cast(run(x), tf.float32).numpy())
    want, got = outputs
    rounding = {"float32": 1e-5, "bfloat16": 1e-2}[dtype]
    assert np.abs(want).max() > 1
    np.testing.assert_allclose(got, want, rtol=rounding, atol=rounding * np.abs(want).max())


def test_serving_dense_takes_the_wide_form_from_the_minimum_rows_in_float32_only():
    """(kernel · xᵀ)ᵀ transposes the product: from SERVING_WIDE_ROWS float32 rows, decided at run
    time for an unknown batch; half precision always multiplies x · kernelᵀ."""
    import tensorflow as tf

    def ops(dtype, rows):
        _, serving = _serving_layers(dtype)
        graph = tf.function(serving).get_concrete_function(tf.TensorSpec((rows, 80), dtype)).graph
        return {op.type for op in graph.get_operations()}

    assert "Transpose" in ops("float32", SERVING_WIDE_ROWS)
    assert "Transpose" not in ops("float32", SERVING_WIDE_ROWS - 1)
    assert {"If", "StatelessIf"} & ops("float32", None)
    assert not {"Transpose", "If", "StatelessIf"} & ops("bfloat16", None)


def test_predict_only_builds_take_serving_dense_for_fc6_and_fc7():
    from model.network.alexnet import build_alexnet

    served = build_alexnet(2, predict_only=True, initialize=())
    kinds = [type(served.get_layer(name)).__name__ for name in ("fc6", "fc7", "fc8")]
    assert kinds == ["ServingDense", "ServingDense", "Dense"]
    assert tuple(served.get_layer("fc6").kernel.shape) == (4096, 9216)
