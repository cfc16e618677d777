"""TensorBoard summaries written at the end of every epoch."""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from model.reports import EpochReport


def write_epoch_summaries(writers, report: EpochReport, train_vars, grad_samples, epoch: int) -> None:
    """`grad_samples`: `histogram_sample` of each gradient of the epoch's last step."""
    with writers["validation"].as_default(step=epoch):
        tf.summary.scalar("epoch_loss", report.loss)
        tf.summary.scalar("epoch_accuracy", report.accuracy)
    with writers["train"].as_default(step=epoch):
        tf.summary.scalar("epoch_loss", report.train_loss)
        tf.summary.scalar("epoch_accuracy", report.train_accuracy)
        for variable in train_vars:
            _histogram(variable.path, variable)
        for variable, sample in zip(train_vars, grad_samples or []):
            if sample is not None:
                _histogram(f"{variable.path}/gradient", sample)
        writers["train"].flush()
        writers["validation"].flush()


def _histogram(name: str, tensor, buckets: int = 30) -> None:
    """TensorBoard's histogram of an evenly strided sample (8,192 values), bucketed in numpy:
    `tf.summary.histogram` buckets with a dozen eager ops per call (0.6 s of a 10-epoch run for
    the four variables and their gradients; its op took seconds on fc7's 16M values unsampled)."""
    from tensorboard.plugins.histogram import metadata

    values = histogram_sample(tensor).numpy().astype(np.float64)
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


def histogram_sample(tensor, limit: int = 8192) -> tf.Tensor:
    """An evenly strided sample (every k-th value in memory order): TensorBoard's histogram op takes
    seconds on fc7's 16M values. The train step returns its gradients sampled so. Gathered by
    coordinates, not from a flattened view: Grappler moves a float32 cast past a reshape, and so
    cast fc7's bfloat16 gradient a second time (~5 ms of a ~48 ms step)."""
    shape = tuple(tensor.shape)
    if not shape:  # a scalar: itself
        return tf.cast(tf.reshape(tensor, [1]), tf.float32)
    size = int(np.prod(shape))
    flat_indices = np.arange(0, size, max(1, size // limit))
    coordinates = np.stack(np.unravel_index(flat_indices, shape), axis=1)
    return tf.cast(tf.gather_nd(tensor, coordinates), tf.float32)
