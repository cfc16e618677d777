"""Learning-rate schedules by step: linear warm-up, then constant, step (×0.1 at 50% and 75%) or cosine.

One formula serves TensorFlow (the optimizer reads it every step, from its own `iterations`
counter, which the checkpoint holds, so a resumed run continues on the same curve) and NumPy
(tests and the dashboard's preview of a spec).
"""

from __future__ import annotations

import math

import keras
import numpy as np

STEP_MILESTONES = (0.5, 0.75)  # fractions of the steps after warm-up where `step` divides by 10


def learning_rate_at(step, base: float, kind: str, warmup_steps: int, total_steps: int, xp=np):
    """The learning rate of 0-based `step`; `xp` is numpy or `tf.experimental.numpy`."""
    step = xp.asarray(step, dtype="float32")
    warm = base * (step + 1.0) / max(warmup_steps, 1)
    after = step - warmup_steps
    span = max(total_steps - warmup_steps, 1)
    if kind == "cosine":
        decayed = base * 0.5 * (1.0 + xp.cos(math.pi * xp.minimum(after / span, 1.0)))
    elif kind == "step":
        drops = sum(xp.where(after >= fraction * span, 1.0, 0.0) for fraction in STEP_MILESTONES)
        decayed = base * xp.power(0.1, drops)
    else:
        decayed = base + 0.0 * step
    return xp.where(step < warmup_steps, warm, decayed)


class Schedule(keras.optimizers.schedules.LearningRateSchedule):
    def __init__(self, base: float, kind: str, warmup_steps: int, total_steps: int):
        self.base, self.kind, self.warmup_steps, self.total_steps = base, kind, warmup_steps, total_steps

    def __call__(self, step):
        import tensorflow.experimental.numpy as tnp

        return tnp.asarray(
            learning_rate_at(step, self.base, self.kind, self.warmup_steps, self.total_steps, xp=tnp),
            dtype="float32",
        )

    def get_config(self):
        return dict(
            base=self.base, kind=self.kind, warmup_steps=self.warmup_steps, total_steps=self.total_steps
        )
