"""What a sweep tries: every combination of a grid, or trials drawn from a search space.

Each trial is a set of training options (`params`) laid over a base spec; whether a trial makes
sense is the spec's own validation, run per trial, so an error names the trial and the field.
"""

from __future__ import annotations

import itertools
import math
from typing import Annotated, Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, ValidationError, model_validator

from model.training.spec import TrainSpec

MAX_TRIALS = 64


class SweepError(ValueError):
    """A sweep that cannot run as asked; the message names the field."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Choice(_Strict):
    choice: list[Any] = Field(min_length=1, max_length=MAX_TRIALS)


class Uniform(_Strict):
    uniform: tuple[float, float]

    @model_validator(mode="after")
    def _ordered(self):
        _check_range(self.uniform, "uniform")
        return self


class LogUniform(_Strict):
    log_uniform: tuple[float, float]

    @model_validator(mode="after")
    def _positive(self):
        _check_range(self.log_uniform, "log_uniform")
        if self.log_uniform[0] <= 0:
            raise ValueError("log_uniform needs a positive lower bound")
        return self


class IntRange(_Strict):
    model_config = ConfigDict(extra="forbid", populate_by_name=True, serialize_by_alias=True)
    bounds: tuple[int, int] = Field(alias="int", description="Inclusive bounds.")

    @model_validator(mode="after")
    def _ordered(self):
        _check_range(self.bounds, "int", allow_equal=True)
        return self


def _check_range(bounds, name: str, allow_equal: bool = False) -> None:
    lo, hi = bounds
    if not (math.isfinite(lo) and math.isfinite(hi)) or lo > hi or (lo == hi and not allow_equal):
        raise ValueError(f"{name} needs [low, high] with low < high; got [{lo}, {hi}]")


def _kind(value) -> str | None:
    """Which distribution a space entry is, from its one key (so an error names only that one)."""
    if isinstance(value, dict):
        return next((k for k in ("choice", "uniform", "log_uniform", "int") if k in value), None)
    return {Choice: "choice", Uniform: "uniform", LogUniform: "log_uniform", IntRange: "int"}.get(type(value))


Distribution = Annotated[
    Annotated[Choice, Tag("choice")]
    | Annotated[Uniform, Tag("uniform")]
    | Annotated[LogUniform, Tag("log_uniform")]
    | Annotated[IntRange, Tag("int")],
    Discriminator(
        _kind,
        custom_error_type="distribution",
        custom_error_message="give one of {choice: [...]}, {uniform: [lo, hi]}, "
        "{log_uniform: [lo, hi]}, {int: [lo, hi]}",
    ),
]


class RandomSearch(_Strict):
    n_trials: int = Field(ge=1, le=MAX_TRIALS)
    seed: int = Field(default=0, ge=0, le=2**31 - 1)
    space: dict[str, Distribution] = Field(min_length=1)


Grid = dict[str, Annotated[list[Any], Field(min_length=1, max_length=MAX_TRIALS)]]


def _check_fields(names, where: str) -> None:
    for name in names:
        if name not in TrainSpec.model_fields:
            options = ", ".join(TrainSpec.model_fields)
            raise SweepError(f"{where}.{name} is not a training option; choose from {options}")


def grid_trials(grid: dict[str, list[Any]]) -> list[dict[str, Any]]:
    """Every combination, the last field varying fastest."""
    if not grid:
        raise SweepError("grid needs at least one field")
    _check_fields(grid, "grid")
    count = math.prod(len(values) for values in grid.values())
    if count > MAX_TRIALS:
        sizes = " × ".join(str(len(v)) for v in grid.values())
        raise SweepError(f"grid gives {sizes} = {count} trials; a sweep runs at most {MAX_TRIALS}")
    return [dict(zip(grid, values)) for values in itertools.product(*grid.values())]


def random_trials(search: RandomSearch) -> list[dict[str, Any]]:
    """`n_trials` draws from `space`, reproducible from `seed`."""
    _check_fields(search.space, "random.space")
    rng = np.random.default_rng(search.seed)
    trials = []
    for _ in range(search.n_trials):
        trial = {}
        for name, dist in search.space.items():
            if isinstance(dist, Choice):
                trial[name] = dist.choice[int(rng.integers(len(dist.choice)))]
            elif isinstance(dist, Uniform):
                trial[name] = float(rng.uniform(*dist.uniform))
            elif isinstance(dist, LogUniform):
                lo, hi = np.log(dist.log_uniform)
                trial[name] = float(np.exp(rng.uniform(lo, hi)))
            else:
                trial[name] = int(rng.integers(dist.bounds[0], dist.bounds[1] + 1))
        trials.append(trial)
    return trials


def trial_specs(base: dict[str, Any], trials: list[dict[str, Any]], validate=TrainSpec.model_validate):
    """Each trial's spec (`validate` may be a stricter model, as the API's); `SweepError` names the
    trial and the field of the first one that is invalid."""
    _check_fields(base, "base")
    specs = []
    for number, params in enumerate(trials, start=1):
        try:
            specs.append(validate({**base, **params}))
        except ValidationError as exc:
            shown = ", ".join(f"{k}={v!r}" for k, v in params.items())
            problems = "; ".join(_problem(e) for e in exc.errors())
            raise SweepError(f"trial {number} ({shown}): {problems}") from None
    return specs


def _problem(error: dict) -> str:
    message = error["msg"].removeprefix("Value error, ")
    return f"{'.'.join(map(str, error['loc']))}: {message}" if error["loc"] else message
