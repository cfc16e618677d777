"""The frozen-prefix feature cache: the main speed lever of a finetune.

When every layer below the first trainable one is frozen, its output for an image never changes,
so it is computed once per image (and once per flipped training image) and training runs on the
stored features. Entries are keyed by the dataset's fingerprint, the prefix's weights and the cut
layer, so a second job on the same data skips this step entirely.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import tensorflow as tf

from model.weights import fingerprint


class Cancelled(Exception):
    """Raised inside long steps when the caller asked to stop."""


class FeatureCache:
    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)

    def key(
        self, dataset_fingerprint: str, prefix_model, cut_layer: str, *, policy: str, preprocess: str
    ) -> str:
        """Everything that changes the features: data, prefix weights, cut, precision, preprocessing."""
        weights = fingerprint([np.asarray(v) for v in prefix_model.weights])
        parts = [dataset_fingerprint, weights, cut_layer, policy, preprocess]
        return hashlib.sha256(":".join(parts).encode()).hexdigest()[:32]

    def features(
        self,
        key: str,
        images: np.ndarray,
        prefix_model,
        flipped_rows: np.ndarray | None,
        batch_size: int = 64,
        should_stop: Callable[[], bool] = lambda: False,
        progress: Callable[[int, int], None] | None = None,
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """Memory-mapped prefix outputs of every image, and of the flipped `flipped_rows` (or None).

        Rows of the flipped array outside `flipped_rows` are never computed and hold zeros.
        `progress(done, total)` counts the images of both passes that still had to be computed.
        """
        folder = self.root / key
        folder.mkdir(parents=True, exist_ok=True)
        passes = [(folder / "plain.npy", np.arange(len(images)), False)]
        if flipped_rows is not None:
            passes.append((folder / "flipped.npy", np.sort(flipped_rows), True))
        with open(folder / "lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # one process computes; the others then read
            missing = [rows for path, rows, _ in passes if not self._complete(path, rows)]
            total, done = sum(len(rows) for rows in missing), 0

            def report(count: int) -> None:
                if progress:
                    progress(done + count, total)

            arrays = []
            for path, rows, flip in passes:
                if self._complete(path, rows):
                    arrays.append(np.load(path, mmap_mode="r"))
                    continue
                arrays.append(
                    self._compute(path, images, rows, flip, prefix_model, batch_size, should_stop, report)
                )
                done += len(rows)
        return arrays[0], (arrays[1] if flipped_rows is not None else None)

    @staticmethod
    def _complete(path: Path, rows: np.ndarray) -> bool:
        rows_path = path.with_suffix(".rows.npy")
        return path.exists() and rows_path.exists() and bool(np.isin(rows, np.load(rows_path)).all())

    def _compute(self, path: Path, images, rows, flip: bool, prefix_model, batch_size, should_stop, report):
        rows_path = path.with_suffix(".rows.npy")
        shape = (len(images), *prefix_model.output.shape[1:])
        tmp = path.with_name(path.stem + ".partial.npy")
        out = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.float32, shape=shape)
        forward = tf.function(
            lambda x: tf.cast(prefix_model(x, training=False), tf.float32), reduce_retracing=True
        )
        for start in range(0, len(rows), batch_size):
            if should_stop():
                del out
                tmp.unlink(missing_ok=True)
                raise Cancelled()
            batch_rows = rows[start : start + batch_size]
            batch = images[batch_rows]
            if flip:
                batch = batch[:, :, ::-1, :]
            out[batch_rows] = forward(tf.constant(batch)).numpy()
            report(min(start + batch_size, len(rows)))
        out.flush()
        del out
        rows_path.unlink(missing_ok=True)  # the rows file is written last: it marks the data complete
        os.replace(tmp, path)
        rows_tmp = rows_path.with_name(rows_path.stem + ".partial.npy")
        np.save(rows_tmp, rows)
        os.replace(rows_tmp, rows_path)
        return np.load(path, mmap_mode="r")
