"""TensorBoard summaries written at the end of every epoch."""

from __future__ import annotations

import numpy as np
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
            _histogram(variable.path, variable)
        for variable, grad in zip(train_vars, grads or []):
            if grad is not None:
                _histogram(f"{variable.path}/gradient", grad)
        writers["train"].flush()
        writers["validation"].flush()


def _histogram(name: str, tensor, buckets: int = 30) -> None:
    """TensorBoard's histogram of an evenly strided sample (8,192 values), bucketed in numpy:
    `tf.summary.histogram` buckets with a dozen eager ops per call (0.6 s of a 10-epoch run for
    the four variables and their gradients; its op took seconds on fc7's 16M values unsampled)."""
    from tensorboard.plugins.histogram import metadata

    values = _histogram_sample(tensor).numpy().astype(np.float64)
    low, high = float(values.min()), float(values.max())
    if low == high:  # TensorBoard's own layout for a single value: all of it in the last bucket
        edges = np.full(buckets + 1, low)
        counts = np.zeros(buckets)
        counts[-1] = values.size
    else:
        counts, edges = np.histogram(values, bins=buckets, range=(low, high))
    table = np.stack([edges[:-1], edges[1:], counts.astype(np.float64)], axis=1)
    histogram_metadata = metadata.create_summary_metadata(display_name=None, description=None)
    tf.summary.write(name, table, metadata=histogram_metadata)


def _histogram_sample(tensor, limit: int = 8192) -> tf.Tensor:
    """An evenly strided sample: TensorBoard's histogram op takes seconds on fc7's 16M values."""
    flat = tf.reshape(tensor, [-1])
    return tf.cast(flat[:: max(1, int(flat.shape[0]) // limit)], tf.float32)
