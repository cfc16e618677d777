"""What a spec shows is what runs: layer choices that would leave random layers frozen are refused."""

import pytest
from pydantic import ValidationError

from model.network.layout import WEIGHT_LAYERS
from model.training.spec import SpecError, TrainSpec


def test_random_weights_train_every_layer_by_default():
    spec = TrainSpec(weights="random")
    assert spec.train_layers == list(WEIGHT_LAYERS) and spec.reinit_layers == list(WEIGHT_LAYERS)


def test_random_weights_with_frozen_layers_are_refused_naming_them():
    with pytest.raises(
        ValidationError, match="train_layers leaves conv1, conv2, conv3, conv4, conv5, fc6 frozen"
    ):
        TrainSpec(weights="random", train_layers=["fc7", "fc8"])


def test_reinit_layers_must_train():
    with pytest.raises(ValidationError, match="train_layers leaves fc7 frozen"):
        TrainSpec(train_layers=["fc8"], reinit_layers=["fc7", "fc8"])
    with pytest.raises(ValidationError, match="leaves fc8 frozen"):
        TrainSpec(train_layers=["fc7"])  # the default reinit_layers is fc8
    assert TrainSpec(train_layers=["fc7"], reinit_layers=[]).reinit_layers == []


def test_a_new_class_count_needs_fc8_to_train():
    spec = TrainSpec(train_layers=["fc7"], reinit_layers=[])
    spec.check_classes(1000, 1000)  # the same classes: fc8 may stay as it is
    with pytest.raises(SpecError, match="the dataset has 3 classes and the starting weights 1000"):
        spec.check_classes(3, 1000)


def test_sgd_momentum_is_shown_as_it_applies():
    assert TrainSpec().momentum == 0.9
    assert TrainSpec(momentum=0.0).momentum == 0.0
    assert TrainSpec(optimizer="adam").momentum is None
    legacy = TrainSpec(optimizer="momentum", momentum=0.5)
    assert (legacy.optimizer, legacy.momentum) == ("sgd", 0.5)
    with pytest.raises(ValidationError, match="momentum applies to optimizer 'sgd' only"):
        TrainSpec(optimizer="adam", momentum=0.9)


def test_a_dumped_spec_validates_to_itself():
    for spec in (TrainSpec(), TrainSpec(weights="random"), TrainSpec(optimizer="adam")):
        assert TrainSpec(**spec.model_dump(mode="json")) == spec


def test_precision_auto_follows_the_hardware_and_the_old_flag_still_means_float16():
    from model.network.precision import cpu_runs_bfloat16

    amx = "processor : 0\nflags : fpu sse2 avx512f amx_bf16 amx_tile\n"
    older = "processor : 0\nflags : fpu sse2 avx2 avx512f\n"
    assert cpu_runs_bfloat16(amx, onednn="1") and cpu_runs_bfloat16("flags : avx512_bf16", onednn="")
    assert not cpu_runs_bfloat16(amx, onednn="0")  # without oneDNN bfloat16 is slower than float32
    assert not cpu_runs_bfloat16(older, onednn="1")
    assert TrainSpec().precision == "auto"
    assert TrainSpec(precision="bfloat16").dtype_policy == "mixed_bfloat16"
    assert TrainSpec(precision="float32").dtype_policy == "float32"
    old = TrainSpec(mixed_precision=True)
    assert old.precision == "float16" and old.loss_scaling and old.dtype_policy == "mixed_float16"
    assert TrainSpec.model_validate(old.model_dump(mode="json")) == old
    with pytest.raises(ValidationError, match="mixed_precision is the old name of precision 'float16'"):
        TrainSpec(mixed_precision=True, precision="bfloat16")
