"""What a finetune does, checked up front: one spec for the library, the CLI and the HTTP API."""

from __future__ import annotations

import math
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from model.network.layout import WEIGHT_LAYERS

LayerName = Literal["conv1", "conv2", "conv3", "conv4", "conv5", "fc6", "fc7", "fc8"]

MAX_EPOCHS = 1000
MAX_BATCH_SIZE = 4096


class SpecError(ValueError):
    """Options that are each valid but do not fit the data or the starting weights."""


class TrainSpec(BaseModel):
    """The training options, with the bounds we accept.

    `weights` is `imagenet` (bvlc_alexnet), `random` (He initialisation, from scratch) or the
    path of an earlier export to continue from (the service writes `job:<id>` and resolves it).
    A layer that starts from random values must train, so `reinit_layers` ⊆ `train_layers`, and
    `weights: random` trains every layer unless `train_layers` says otherwise (then it is refused).
    """

    model_config = ConfigDict(extra="forbid")

    train_layers: list[LayerName] = Field(
        default=["fc7", "fc8"],
        min_length=1,
        description="Layers whose weights train; the rest stay bit-identical. "
        "Default fc7, fc8; every layer with `weights: random`.",
    )
    reinit_layers: list[LayerName] = Field(
        default=["fc8"],
        description="Layers that start from random instead of from `weights`; each must also train.",
    )
    weights: str = Field(
        default="imagenet",
        min_length=1,
        max_length=4096,
        description="`imagenet`, `random`, or an earlier model to continue from.",
    )
    optimizer: Literal["sgd", "adam"] = Field(
        default="sgd", description="`sgd` (with `momentum`) or `adam`. `momentum` is read as `sgd`."
    )
    learning_rate: float = Field(
        default=0.001, gt=0.0, le=10.0, description="The step size; lower it if training diverges."
    )
    lr_schedule: Literal["constant", "step", "cosine"] = Field(
        default="constant",
        description="After warm-up: `constant`; `step` (×0.1 at 50% and 75% of the remaining steps); "
        "`cosine` (down towards 0 by the last step).",
    )
    warmup_epochs: int = Field(
        default=0,
        ge=0,
        lt=MAX_EPOCHS,
        description="Epochs over which the learning rate rises linearly to `learning_rate`.",
    )
    weight_decay: float = Field(
        default=0.0,
        ge=0.0,
        le=1.0,
        description="Decoupled weight decay of the trained kernels (biases excluded); 0 is off.",
    )
    label_smoothing: float = Field(
        default=0.0, ge=0.0, lt=1.0, description="Training targets mix this much of a uniform distribution."
    )
    class_weight: Literal["none", "balanced"] = Field(
        default="none",
        description="`balanced` weighs each training image by n / (classes × images of its class).",
    )
    momentum: float | None = Field(
        default=None,
        ge=0.0,
        lt=1.0,
        description="SGD momentum: 0.9 unless given, 0 for plain SGD; null with adam (it does not apply).",
    )
    num_epochs: int = Field(default=10, ge=1, le=MAX_EPOCHS, description="Passes over the training images.")
    batch_size: int = Field(default=128, ge=1, le=MAX_BATCH_SIZE, description="Images per training step.")
    dropout_rate: float = Field(default=0.5, ge=0.0, lt=1.0, description="Probability of dropping a unit.")
    augment_flip: bool = Field(default=True, description="Flip training images left to right at random.")
    early_stopping_patience: int | None = Field(
        default=None,
        ge=1,
        le=MAX_EPOCHS,
        description="Stop after this many epochs without a better validation accuracy; null is off.",
    )
    seed: int = Field(
        default=0,
        ge=0,
        le=2**31 - 1,
        description="Fixes the data order, dropout and fresh layers: same seed, same run.",
    )
    precision: Literal["auto", "float32", "bfloat16", "float16"] = Field(
        default="auto",
        description="What the network computes in (variables, LRN, input normalization and logits "
        "stay float32; the export is float32). `auto`: bfloat16 where the hardware runs it natively "
        "(NVIDIA compute capability ≥ 8.0; x86 with AMX or AVX512_BF16 and oneDNN), float16 on older "
        "NVIDIA GPUs, else float32. The job records what it used.",
    )
    mixed_precision: bool = Field(
        default=False,
        description="The old name of `precision: float16` (true means float16); true with a `precision` "
        "other than float16 or auto is refused (422).",
    )
    xla: bool = Field(default=False, description="Compile the train step with XLA.")
    feature_cache: bool = Field(
        default=True,
        description="Compute the frozen layers below the first dropout once per image and train on "
        "the stored features (same result, much faster); false runs them every step.",
    )

    @model_validator(mode="before")
    @classmethod
    def _legacy_names(cls, data):
        if isinstance(data, dict) and data.get("optimizer") == "momentum":
            data = {**data, "optimizer": "sgd"}
        if isinstance(data, dict) and data.get("mixed_precision") is True:
            if data.get("precision", "float16") not in ("float16", "auto"):
                raise ValueError(
                    f"mixed_precision is the old name of precision 'float16', but precision is "
                    f"{data['precision']!r}; give precision alone"
                )
            data = {**data, "precision": "float16"}
        return data

    @field_validator("learning_rate", "momentum", "dropout_rate", "weight_decay", "label_smoothing")
    @classmethod
    def _finite(cls, value: float | None) -> float | None:
        if value is not None and not math.isfinite(value):
            raise ValueError("must be a finite number")
        return value

    @field_validator("train_layers", "reinit_layers")
    @classmethod
    def _in_network_order(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise ValueError("lists a layer twice")
        return sorted(value, key=WEIGHT_LAYERS.index)

    @model_validator(mode="after")
    def _consistent(self) -> TrainSpec:
        if self.optimizer == "sgd" and self.momentum is None:
            self.momentum = 0.9
        if self.optimizer == "adam" and self.momentum is not None:
            raise ValueError("momentum applies to optimizer 'sgd' only; leave it out (null) with 'adam'")
        if self.warmup_epochs >= self.num_epochs:
            raise ValueError(
                f"warmup_epochs ({self.warmup_epochs}) must be less than num_epochs ({self.num_epochs})"
            )
        if self.weights == "random":
            self.reinit_layers = list(WEIGHT_LAYERS)
            if "train_layers" not in self.model_fields_set:
                self.train_layers = list(WEIGHT_LAYERS)
        frozen_fresh = [name for name in self.reinit_layers if name not in self.train_layers]
        if frozen_fresh:
            why = (
                "weights 'random' starts every layer from random values"
                if self.weights == "random"
                else ("reinit_layers start from random values")
            )
            raise ValueError(
                f"{why}, so they must train: train_layers leaves {', '.join(frozen_fresh)} frozen; "
                f"add {'them' if len(frozen_fresh) > 1 else 'it'} to train_layers"
            )
        return self

    @property
    def compute_precision(self) -> str:
        """`precision` with `auto` resolved for this machine: float32, bfloat16 or float16."""
        from model.network.precision import resolve

        return resolve(self.precision)

    @property
    def dtype_policy(self) -> str:
        from model.network.precision import dtype_policy

        return dtype_policy(self.compute_precision)

    @property
    def loss_scaling(self) -> bool:
        """float16 needs a scaled loss (its range is small); bfloat16 has float32's range."""
        return self.compute_precision == "float16"

    @property
    def first_trainable(self) -> str:
        return self.train_layers[0]

    def check_classes(self, num_classes: int, source_classes: int | None) -> None:
        """A new set of classes needs a fresh fc8, which must then train (raises `SpecError`)."""
        if source_classes is not None and source_classes != num_classes and "fc8" not in self.train_layers:
            raise SpecError(
                f"the dataset has {num_classes} classes and the starting weights {source_classes}, so fc8 "
                f"starts fresh and must train: add fc8 to train_layers"
            )
