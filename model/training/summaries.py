"""TensorBoard summaries: the step scalars, and at the end of every epoch its curves and histograms.

Written as TensorBoard's own event records from Python (`EventWriter`), not through `tf.summary`,
whose eager ops cost a measurable share of a short job (docs: Performance). The records are the
same: TensorBoard's scalar and histogram summaries, as tensors with their plugins' metadata, in
TFRecord files named as TensorFlow names them.
"""

from __future__ import annotations

import itertools
import os
import socket
import time
from pathlib import Path

import numpy as np
import tensorflow as tf
from tensorboard.compat.proto import event_pb2, summary_pb2
from tensorboard.plugins.histogram import metadata as histogram_metadata
from tensorboard.plugins.scalar import metadata as scalar_metadata
from tensorboard.util import tensor_util

from model.training.reports import EpochReport

_FILES = itertools.count()


class EventWriter:
    """One event file in `logdir`. Records are written as they come; `flush` makes them visible
    to a TensorBoard reading the folder, and the file is closed with the writer."""

    def __init__(self, logdir: str | os.PathLike):
        logdir = Path(logdir)
        logdir.mkdir(parents=True, exist_ok=True)
        host, pid = socket.gethostname(), os.getpid()
        name = f"events.out.tfevents.{int(time.time())}.{host}.{pid}.{next(_FILES)}.v2"
        self._records = tf.io.TFRecordWriter(str(logdir / name))
        self._described: set[str] = set()  # tags whose metadata was written: with their first value
        self._write(event_pb2.Event(wall_time=time.time(), file_version="brain.Event:2"))

    def scalars(self, step: int, **values: float) -> None:
        self._summary(step, {tag: np.float32(value) for tag, value in values.items()}, _SCALAR)

    def histogram(self, step: int, tag: str, values: np.ndarray, buckets: int = 30) -> None:
        """TensorBoard's histogram layout: [left edge, right edge, count] per bucket, float64.

        Non-finite values (a float16 gradient that overflowed: under loss scaling the optimizer
        skips that step) are counted in the scalar `<tag>/nonfinite`, and the rest are binned."""
        values = np.asarray(values, np.float64)
        finite = np.isfinite(values)
        if not finite.all():
            self.scalars(step, **{f"{tag}/nonfinite": float(values.size - finite.sum())})
            values = values[finite]
            if not values.size:
                return
        low, high = float(values.min()), float(values.max())
        if low == high:  # TensorBoard's own layout for a single value: all of it in the last bucket
            edges = np.full(buckets + 1, low)
            counts = np.zeros(buckets)
            counts[-1] = values.size
        else:
            counts, edges = np.histogram(values, bins=buckets, range=(low, high))
        table = np.stack([edges[:-1], edges[1:], counts.astype(np.float64)], axis=1)
        self._summary(step, {tag: table}, _HISTOGRAM)

    def flush(self) -> None:
        self._records.flush()

    def _summary(self, step: int, tensors: dict, metadata: summary_pb2.SummaryMetadata) -> None:
        summary = summary_pb2.Summary()
        for tag, tensor in tensors.items():
            value = summary.value.add(tag=tag, tensor=tensor_util.make_tensor_proto(tensor))
            if tag not in self._described:
                value.metadata.CopyFrom(metadata)
                self._described.add(tag)
        self._write(event_pb2.Event(wall_time=time.time(), step=step, summary=summary))

    def _write(self, event: event_pb2.Event) -> None:
        self._records.write(event.SerializeToString())


_SCALAR = scalar_metadata.create_summary_metadata(display_name=None, description=None)
_HISTOGRAM = histogram_metadata.create_summary_metadata(display_name=None, description=None)


def write_epoch_summaries(writers, report: EpochReport, train_vars, grad_samples, epoch: int) -> None:
    """`grad_samples`: `histogram_sample` of each gradient of the epoch's last step."""
    writers["validation"].scalars(epoch, epoch_loss=report.loss, epoch_accuracy=report.accuracy)
    train = writers["train"]
    train.scalars(epoch, epoch_loss=report.train_loss, epoch_accuracy=report.train_accuracy)
    for variable in train_vars:
        train.histogram(epoch, variable.path, histogram_sample(variable).numpy())
    for variable, sample in zip(train_vars, grad_samples or []):
        if sample is not None:
            train.histogram(epoch, f"{variable.path}/gradient", sample.numpy())
    train.flush()
    writers["validation"].flush()


def histogram_sample(tensor, limit: int = 8192) -> tf.Tensor:
    """An evenly strided sample (every k-th value in memory order): TensorBoard's histogram op takes
    seconds on fc7's 16M values. The train step returns its gradients sampled so. Gathered by
    coordinates, not from a flattened view: Grappler moves a float32 cast past a reshape, and so
    cast fc7's bfloat16 gradient a second time."""
    shape = tuple(tensor.shape)
    if not shape:  # a scalar: itself
        return tf.cast(tf.reshape(tensor, [1]), tf.float32)
    size = int(np.prod(shape))
    flat_indices = np.arange(0, size, max(1, size // limit))
    coordinates = np.stack(np.unravel_index(flat_indices, shape), axis=1)
    return tf.cast(tf.gather_nd(tensor, coordinates), tf.float32)
