"""What a finetune does, checked up front: one spec for the library, the CLI and the HTTP API."""

from __future__ import annotations

import math
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from model.layout import WEIGHT_LAYERS

LayerName = Literal["conv1", "conv2", "conv3", "conv4", "conv5", "fc6", "fc7", "fc8"]

MAX_EPOCHS = 1000
MAX_BATCH_SIZE = 4096


class TrainSpec(BaseModel):
    """The training options, with the bounds we accept.

    `weights` is `imagenet` (bvlc_alexnet.npy), `random` (He initialisation, from scratch) or the
    path of an earlier export to continue from (the service writes `job:<id>` and resolves it).
    """

    model_config = ConfigDict(extra="forbid")

    train_layers: list[LayerName] = Field(
        default=["fc7", "fc8"],
        min_length=1,
        description="Layers whose weights train; the rest stay bit-identical.",
    )
    reinit_layers: list[LayerName] = Field(
        default=["fc8"], description="Layers that start from random instead of from `weights`."
    )
    weights: str = Field(
        default="imagenet",
        min_length=1,
        max_length=4096,
        description="`imagenet`, `random`, or an earlier model to continue from.",
    )
    optimizer: Literal["sgd", "momentum", "adam"] = "sgd"
    learning_rate: float = Field(default=0.001, gt=0.0, le=10.0)
    momentum: float = Field(default=0.9, ge=0.0, lt=1.0)
    num_epochs: int = Field(default=10, ge=1, le=MAX_EPOCHS)
    batch_size: int = Field(default=128, ge=1, le=MAX_BATCH_SIZE)
    dropout_rate: float = Field(default=0.5, ge=0.0, lt=1.0, description="Probability of dropping a unit.")
    augment_flip: bool = True
    early_stopping_patience: int | None = Field(
        default=None,
        ge=1,
        le=MAX_EPOCHS,
        description="Stop after this many epochs without a better validation accuracy; null is off.",
    )
    seed: int = Field(default=0, ge=0, le=2**31 - 1)
    mixed_precision: bool = Field(
        default=False, description="float16 compute on a GPU (logits stay float32)."
    )
    xla: bool = Field(default=False, description="Compile the train step with XLA.")

    @field_validator("learning_rate", "momentum", "dropout_rate")
    @classmethod
    def _finite(cls, value: float) -> float:
        if not math.isfinite(value):
            raise ValueError("must be a finite number")
        return value

    @field_validator("train_layers", "reinit_layers")
    @classmethod
    def _in_network_order(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise ValueError("lists a layer twice")
        return sorted(value, key=WEIGHT_LAYERS.index)

    @model_validator(mode="after")
    def _fresh_fc8_for_new_classes(self) -> TrainSpec:
        if self.weights == "random":
            self.reinit_layers = list(WEIGHT_LAYERS)
        return self

    @property
    def first_trainable(self) -> str:
        return self.train_layers[0]
