"""The optimizer a run trains with: Keras' SGD or Adam, with the spec's schedule and weight decay."""

from __future__ import annotations

import keras
import tensorflow as tf

from model.training.schedules import Schedule
from model.training.spec import TrainSpec


class _OneReplica:
    """Keras sums the gradients over replicas even when no distribution strategy is in use. Under
    `tf.function` that sum registers a custom gradient in TensorFlow's process-wide registry, whose
    closure keeps the traced graph alive, and with it every variable and tensor the graph captured:
    a worker's memory grew by about 135 MB with every fc7+fc8 job. With one replica the sum is the
    gradient itself, so nothing is registered.
    """

    def _all_reduce_sum_gradients(self, grads_and_vars):
        if tf.distribute.has_strategy():
            return super()._all_reduce_sum_gradients(grads_and_vars)
        return list(grads_and_vars)


class Adam(_OneReplica, keras.optimizers.Adam):
    """Keras' Adam, without the per-job leak (see `_OneReplica`)."""


class FusedMomentumSGD(_OneReplica, keras.optimizers.SGD):
    """Keras SGD whose momentum step is TensorFlow's one fused kernel, `ResourceApplyKerasMomentum`,
    without the per-job leak (see `_OneReplica`).

    Same arithmetic as Keras (`m = m·momentum − g·lr; w += m`) and the same variables (checkpoints
    are interchangeable), in one pass over w, m and g instead of four element-wise ops: for the
    67 MB fc7 kernel, a visible share of a step. Nesterov keeps Keras' path.
    """

    def update_step(self, gradient, variable, learning_rate):
        if self.momentum == 0 or self.nesterov:
            return super().update_step(gradient, variable, learning_rate)
        momentum = self.momentums[self._get_variable_index(variable)]
        tf.raw_ops.ResourceApplyKerasMomentum(
            var=variable.handle,
            accum=momentum.handle,
            lr=tf.cast(learning_rate, variable.dtype),
            grad=tf.cast(gradient, variable.dtype),
            momentum=tf.cast(self.momentum, variable.dtype),
        )


def make_optimizer(spec: TrainSpec, steps_per_epoch: int) -> keras.optimizers.Optimizer:
    """The optimizer with its schedule (a plain rate when constant: the checkpoint layout of runs
    without one stays as it was) and decoupled weight decay on kernels only."""
    rate = spec.learning_rate
    if spec.lr_schedule != "constant" or spec.warmup_epochs:
        total = steps_per_epoch * spec.num_epochs
        rate = Schedule(rate, spec.lr_schedule, steps_per_epoch * spec.warmup_epochs, total)
    decay = spec.weight_decay or None
    if spec.optimizer == "adam":
        optimizer = Adam(rate, weight_decay=decay)
    else:
        optimizer = FusedMomentumSGD(rate, momentum=spec.momentum or 0.0, weight_decay=decay, name="SGD")
    if decay:
        optimizer.exclude_from_weight_decay(var_names=["bias"])
    return keras.optimizers.LossScaleOptimizer(optimizer) if spec.loss_scaling else optimizer
