"""What `POST /predict` answers."""

from __future__ import annotations

from pydantic import BaseModel, Field


class Prediction(BaseModel):
    label: str
    class_index: int
    probability: float


class PredictionsPublic(BaseModel):
    model: str = Field(description="`imagenet` or `job:<id>`")
    precision: str = Field(description="what answered: float32, bfloat16 or float16")
    predictions: list[list[Prediction]] = Field(
        description="top-k per image, in the order the images were sent"
    )
