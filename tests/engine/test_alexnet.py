import os

import numpy as np
import pytest

from model.data.preprocess import PreprocessSpec, normalize
from model.exports.weights import apply_weights, read_weights
from model.network.alexnet import build_alexnet, split_layers
from model.network.layout import WEIGHT_LAYERS
from testkit.processes import run_python
from tests.utils import reference_alexnet


def test_layers_are_named_and_shaped_like_bvlc_alexnet():
    model = build_alexnet(num_classes=7)
    shapes = {name: [tuple(w.shape) for w in model.get_layer(name).weights] for name in WEIGHT_LAYERS}
    assert shapes == {
        "conv1": [(11, 11, 3, 96), (96,)],
        "conv2": [(5, 5, 48, 256), (256,)],
        "conv3": [(3, 3, 256, 384), (384,)],
        "conv4": [(3, 3, 192, 384), (384,)],
        "conv5": [(3, 3, 192, 256), (256,)],
        "fc6": [(9216, 4096), (4096,)],
        "fc7": [(4096, 4096), (4096,)],
        "fc8": [(4096, 7), (7,)],
    }
    assert model.input_shape == (None, 227, 227, 3)
    assert model.get_layer("pool5").output.shape[1:] == (6, 6, 256)
    lrn = model.get_layer("lrn1")
    assert (lrn.depth_radius, lrn.alpha, lrn.beta, lrn.bias) == (2, 2e-05, 0.75, 1.0)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"num_classes": 1}, "num_classes"),
        ({"num_classes": 2.5}, "num_classes"),
        ({"dropout_rate": 1.0}, "dropout_rate"),
        ({"dropout_rate": -0.1}, "dropout_rate"),
    ],
)
def test_bad_arguments_are_refused_up_front(kwargs, message):
    with pytest.raises(ValueError, match=message):
        build_alexnet(**kwargs)


def test_forward_pass_matches_an_independent_numpy_implementation(weights_file):
    weights = read_weights(weights_file)
    model = build_alexnet(num_classes=1000)
    apply_weights(model, weights, WEIGHT_LAYERS)
    rng = np.random.default_rng(3)
    images = rng.integers(0, 256, size=(2, 227, 227, 3), dtype=np.uint8)
    logits = model(images, training=False).numpy()
    bgr = normalize(images, PreprocessSpec())
    expected = np.stack([reference_alexnet.forward(image, weights) for image in bgr])
    relative_error = np.abs(logits - expected).max() / np.abs(expected).max()
    assert relative_error < 1e-4
    assert np.abs(expected).max() > 1e-3  # the comparison is not between two near-zero vectors


def test_split_keeps_dropout_with_the_trainable_head():
    model = build_alexnet(num_classes=3)
    prefix, head = split_layers(model, "fc7")
    assert prefix[-1].name == "fc6"
    assert [layer.name for layer in head] == ["dropout6", "fc7", "dropout7", "fc8"]
    prefix, head = split_layers(model, "conv3")
    assert prefix[-1].name == "pool2" and head[0].name == "conv3"


def test_fresh_layers_are_he_initialised():
    import keras

    keras.utils.set_random_seed(0)
    kernel = np.asarray(build_alexnet(num_classes=10).get_layer("fc7").kernel)
    assert abs(kernel.std() - np.sqrt(2.0 / 4096)) < 0.1 * np.sqrt(2.0 / 4096)


def test_grouped_convolutions_equal_keras_native_groups():
    """Same weights layout, same outputs, without Keras' XLA path for groups."""
    import keras

    from model.network.layers import GroupedConv2D

    rng = np.random.default_rng(3)
    inputs = rng.standard_normal((2, 13, 13, 384)).astype(np.float32)
    native = keras.layers.Conv2D(256, 3, padding="same", groups=2)
    ours = GroupedConv2D(256, 3, padding="same", groups=2)
    native.build(inputs.shape)
    ours.build(inputs.shape)
    ours.set_weights(native.get_weights())
    assert ours.kernel.shape == (3, 3, 192, 256)
    assert np.allclose(ours(inputs).numpy(), native(inputs).numpy(), rtol=1e-4, atol=1e-4)
    model = build_alexnet(2)
    assert [type(model.get_layer(n)).__name__ for n in ("conv1", "conv2", "conv4", "conv5")] == [
        "Conv2D", "GroupedConv2D", "GroupedConv2D", "GroupedConv2D",
    ]  # fmt: skip


# a fresh process: a native grouped conv2 with its ReLU, traced as training traces it and eagerly,
# against the same layer split per group, in float32 and bfloat16; prints per dtype whether the
# native kernel ran and the largest relative difference
GROUPED_IN_A_GRAPH = """
import numpy as np, tensorflow as tf
from model.network.layers import GroupedConv2D, native_grouped_convolution
for dtype in ("float32", "bfloat16"):
    inputs = tf.constant(np.random.default_rng(3).standard_normal((2, 13, 13, 96)), dtype)
    results = []
    for native in (True, False):
        layer = GroupedConv2D(64, 3, padding="same", groups=2, activation="relu", native=native, dtype=dtype)
        layer.build(inputs.shape)
        layer.set_weights([np.linspace(-1, 1, w.size).reshape(w.shape) for w in layer.get_weights()])
        def step(x):
            with tf.GradientTape() as tape:
                loss = tf.reduce_sum(tf.cast(layer(x), tf.float32) ** 2)
            return loss, tape.gradient(loss, layer.kernel)
        outputs = [t for run in (tf.function(step), step) for t in run(inputs)]
        results.append([tf.cast(t, tf.float32).numpy() for t in outputs])
    worst = max(float(np.abs(a - b).max() / np.abs(b).max()) for a, b in zip(*results))
    print(native_grouped_convolution(dtype), worst)
"""


@pytest.mark.parametrize("onednn", ["0", "1"])
def test_native_grouped_convolutions_run_with_and_without_onednn(onednn):
    """Without oneDNN, graph rewrites fuse convolution, bias and ReLU into a kernel that has no
    groups, and without AVX-512 oneDNN leaves bfloat16 to kernels whose gradients have no groups:
    the probe must see both and split instead (AMD CPUs with AVX2 run that way)."""
    env = {**os.environ, "TF_ENABLE_ONEDNN_OPTS": onednn, "TF_CPP_MIN_LOG_LEVEL": "2"}
    done = run_python(GROUPED_IN_A_GRAPH, env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    (native32, difference32), (_, difference16) = (line.split() for line in done.stdout.splitlines())
    assert native32 == ("True" if onednn == "1" else "False")
    assert float(difference32) < 1e-5
    assert float(difference16) < 2e-2


@pytest.mark.parametrize(("policy", "tolerance"), [("float32", 1e-4), ("mixed_bfloat16", 3e-2)])
def test_fast_kernels_compute_the_portable_network(weights_file, policy, tolerance):
    """The fused LRN and input normalization and TensorFlow's grouped kernel (what training runs)
    give the outputs and conv1 gradients of the portable ops (what exports run)."""
    import tensorflow as tf

    images = np.random.default_rng(4).integers(0, 256, (4, 227, 227, 3), dtype=np.uint8)
    direction = tf.constant(np.random.default_rng(5).standard_normal((4, 1000)), tf.float32)
    results = []
    for fast_kernels in (False, True):
        model = build_alexnet(1000, dtype_policy=policy, fast_kernels=fast_kernels, initialize=())
        apply_weights(model, read_weights(weights_file), WEIGHT_LAYERS)
        with tf.GradientTape() as tape:
            logits = tf.cast(model(images, training=False), tf.float32)
            loss = tf.reduce_sum(logits * direction)
        results.append((logits.numpy(), tape.gradient(loss, model.get_layer("conv1").kernel).numpy()))
    (plain_logits, plain_grad), (fast_logits, fast_grad) = results
    assert np.abs(fast_logits - plain_logits).max() <= tolerance * np.abs(plain_logits).max()
    assert np.abs(fast_grad - plain_grad).max() <= tolerance * np.abs(plain_grad).max()
    fast = build_alexnet(2, fast_kernels=True)
    assert fast.get_layer("lrn1").fused and fast.get_layer("conv2").native
    assert not build_alexnet(2).get_layer("lrn1").fused


@pytest.mark.parametrize("policy", ["mixed_bfloat16", "mixed_float16"])
def test_predict_only_networks_predict_exactly_as_weights_cast_at_every_call(weights_file, policy):
    """What the predictors hold: the half-precision layers' weights cast once, at build."""
    import tensorflow as tf

    images = np.random.default_rng(7).integers(0, 256, (3, 227, 227, 3), dtype=np.uint8)
    outputs, models = [], []
    for predict_only in (False, True):
        model = build_alexnet(
            1000,
            dtype_policy=policy,
            fast_kernels=True,
            predict_only=predict_only,
            initialize=(),
            start_weights=read_weights(weights_file),
        )
        outputs.append(tf.nn.softmax(tf.cast(model(images, training=False), tf.float32)).numpy())
        models.append(model)
    half = policy.removeprefix("mixed_")
    assert [w.dtype for w in models[0].get_layer("fc6").weights] == ["float32", "float32"]
    assert all(w.dtype == half for name in WEIGHT_LAYERS[:-1] for w in models[1].get_layer(name).weights)
    assert [w.dtype for w in models[1].get_layer("fc8").weights] == ["float32", "float32"]
    np.testing.assert_array_equal(outputs[1], outputs[0])


@pytest.mark.parametrize("dtype", ["float32", "bfloat16", "float16"])
def test_the_fused_lrn_is_tensorflows_lrn_in_float32(dtype):
    """Activations of several hundred: float16 squares of them overflow unless computed in float32."""
    import tensorflow as tf

    from model.network.layers import LocalResponseNormalization

    values = np.random.default_rng(6).uniform(0, 600, (2, 7, 7, 96)).astype(np.float32)
    want = tf.nn.local_response_normalization(values, 2, 1.0, 2e-05, 0.75).numpy()
    fused = LocalResponseNormalization(fused=True, dtype=dtype)
    got = fused(tf.cast(values, dtype))
    assert got.dtype == dtype
    rounding = {"float32": 1e-6, "bfloat16": 1e-2, "float16": 2e-3}[dtype]
    assert np.abs(got.numpy().astype(np.float32) - want).max() <= rounding * np.abs(want).max()


@pytest.mark.parametrize("compiled", [False, True])
def test_rounding_to_bfloat16_by_integers_is_tensorflows_cast_bit_for_bit(compiled):
    """Random bit patterns (NaNs among them, some of whose payloads would round to infinity), ties
    to even, zeros, infinities, the largest floats; the gradient is the cast's."""
    import tensorflow as tf

    from model.network.layers import narrow_float32

    rng = np.random.default_rng(8)
    ties = rng.integers(0, 2**16, 4096, dtype=np.uint32) << 16 | 0x8000
    special = [0, 0x80000000, 0x7F800000, 0xFF800000, 0x7F7FFFFF, 0xFF7FFFFF, 0x7FC00000, 0xFFFFFFFF]
    bits = np.concatenate([rng.integers(0, 2**32, 100_000, dtype=np.uint64).astype(np.uint32), ties, special])
    values = tf.constant(bits.astype(np.uint32).view(np.float32))
    narrow = lambda x: narrow_float32(x, "bfloat16")  # noqa: E731
    got = (tf.function(narrow, jit_compile=True) if compiled else narrow)(values)
    want = tf.cast(values, tf.bfloat16)
    got_bits, want_bits = (tf.bitcast(t, tf.uint16).numpy() for t in (got, want))
    nan = np.isnan(want.numpy().astype(np.float32))  # TensorFlow's own NaN sign varies with the size
    np.testing.assert_array_equal(got_bits[~nan], want_bits[~nan])
    assert nan.sum() > 100 and np.isnan(got.numpy()[nan].astype(np.float32)).all()
    with tf.GradientTape() as tape:
        tape.watch(values)
        rounded = narrow(values)
    gradient = tape.gradient(rounded, values, output_gradients=tf.ones_like(rounded))
    assert gradient.dtype == tf.float32 and np.all(gradient.numpy() == 1)
