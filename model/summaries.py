"""TensorBoard summaries written at the end of every epoch."""

from __future__ import annotations

import tensorflow as tf

from model.reports import EpochReport


def write_epoch_summaries(writers, report: EpochReport, train_vars, grads, epoch: int) -> None:
    with writers["validation"].as_default(step=epoch):
        tf.summary.scalar("epoch_loss", report.loss)
        tf.summary.scalar("epoch_accuracy", report.accuracy)
    with writers["train"].as_default(step=epoch):
        tf.summary.scalar("epoch_loss", report.train_loss)
        tf.summary.scalar("epoch_accuracy", report.train_accuracy)
        for variable in train_vars:
            tf.summary.histogram(variable.path, _histogram_sample(variable))
        for variable, grad in zip(train_vars, grads or []):
            if grad is not None:
                tf.summary.histogram(f"{variable.path}/gradient", _histogram_sample(grad))
        writers["train"].flush()
        writers["validation"].flush()


def _histogram_sample(tensor, limit: int = 8192) -> tf.Tensor:
    """An evenly strided sample: TensorBoard's histogram op takes seconds on fc7's 16M values."""
    flat = tf.reshape(tensor, [-1])
    return tf.cast(flat[:: max(1, int(flat.shape[0]) // limit)], tf.float32)
