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
import shutil
import time
from collections.abc import Callable
from pathlib import Path

import ml_dtypes
import numpy as np
import tensorflow as tf

from model.network.padding import padded_size

BFLOAT16 = np.dtype(ml_dtypes.bfloat16)

DATASET_FILE = "dataset"  # the fingerprint of the dataset an entry was computed from
# Mixed precision casts each frozen kernel per call, so small batches lose; but a cold job's first
# calls land on fresh memory, and at 256 images their activations are 0.75 GB. 128 was the faster
# of the two for a whole cold job (docs: Performance). A last, partial batch is padded to a power
# of two, so a process compiles few batch shapes and computes fewer than twice the rows.
FEATURE_BATCH = 128


class Cancelled(Exception):
    """Raised inside long steps when the caller asked to stop."""


def _wait_for_lock(lock, should_stop: Callable[[], bool], poll_seconds: float = 0.2) -> None:
    """Take the entry's lock, waiting while another job computes it (a sweep's trials start together
    and compute the features once); a cancel while waiting is honoured."""
    while True:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            if should_stop():
                raise Cancelled() from None
            time.sleep(poll_seconds)


class FeatureCache:
    """Entries are folders under `root`; with `max_bytes`, the least recently used ones that no
    process is using are evicted after each new entry until the cache fits."""

    def __init__(self, root: str | os.PathLike, max_bytes: int | None = None):
        self.root = Path(root)
        self.max_bytes = max_bytes

    def key(
        self,
        dataset_fingerprint: str,
        prefix_fingerprint: str,
        cut_layer: str,
        *,
        policy: str,
        preprocess: str,
    ) -> str:
        """Everything that changes the features: data, prefix weights, cut, precision, preprocessing."""
        parts = [dataset_fingerprint, prefix_fingerprint, cut_layer, policy, preprocess]
        return hashlib.sha256(":".join(parts).encode()).hexdigest()[:32]

    def features(
        self,
        key: str,
        images: np.ndarray,
        prefix_model,
        flipped_rows: np.ndarray | None,
        batch_size: int = FEATURE_BATCH,
        should_stop: Callable[[], bool] = lambda: False,
        progress: Callable[[int, int], None] | None = None,
        dataset_fingerprint: str = "",
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """Memory-mapped prefix outputs of every image, and of the flipped `flipped_rows` (or None).

        Rows of the flipped array outside `flipped_rows` are never computed and hold zeros.
        `progress(done, total)` counts the images of both passes that still had to be computed.
        """
        folder = self.root / key
        folder.mkdir(parents=True, exist_ok=True)
        (folder / DATASET_FILE).write_text(dataset_fingerprint)
        passes = [(folder / "plain.npy", np.arange(len(images)), False)]
        if flipped_rows is not None:
            passes.append((folder / "flipped.npy", np.sort(flipped_rows), True))
        with open(folder / "lock", "w") as lock:
            _wait_for_lock(lock, should_stop)  # one process computes; the others wait, then read
            missing = [not self._complete(path, rows) for path, rows, _ in passes]
            stored = storage_dtype(prefix_model)
            todo = [one for one, needed in zip(passes, missing) if needed]
            if todo:
                shape = (len(images), *prefix_model.output.shape[1:])
                self._compute(todo, images, prefix_model, shape, stored, batch_size, should_stop, progress)
            arrays = [_load(path, stored) for path, _, _ in passes]
            os.utime(folder / "lock")  # last use, for LRU eviction
        if any(missing) and self.max_bytes is not None:
            self.evict(keep=key)
        return arrays[0], (arrays[1] if flipped_rows is not None else None)

    def evict(self, keep: str | None = None) -> list[str]:
        """Remove least recently used entries, never one in use, until the cache fits `max_bytes`."""
        entries = []
        for folder in self.root.iterdir() if self.root.is_dir() else []:
            try:  # another worker may be removing this entry (its dataset was deleted): skip it
                lock = folder / "lock"
                used = lock.stat().st_mtime if lock.exists() else 0.0
                entries.append((used, folder, sum(f.stat().st_size for f in folder.iterdir() if f.is_file())))
            except (FileNotFoundError, NotADirectoryError):
                continue
        total = sum(size for _, _, size in entries)
        removed = []
        for _, folder, size in sorted(entries, key=lambda entry: entry[0]):
            if total <= (self.max_bytes or 0):
                break
            if folder.name != keep and self._remove_if_unused(folder):
                total -= size
                removed.append(folder.name)
        return removed

    def remove_dataset(self, dataset_fingerprint: str) -> list[str]:
        """Remove every entry computed from that dataset (when it is deleted), unless in use."""
        removed = []
        for marker in self.root.glob(f"*/{DATASET_FILE}") if self.root.is_dir() else []:
            if marker.read_text() == dataset_fingerprint and self._remove_if_unused(marker.parent):
                removed.append(marker.parent.name)
        return removed

    @staticmethod
    def _remove_if_unused(folder: Path) -> bool:
        try:
            with open(folder / "lock", "a") as lock:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)  # a training job holds it: keep
                shutil.rmtree(folder, ignore_errors=True)
            return True
        except BlockingIOError:
            return False

    @staticmethod
    def _complete(path: Path, rows: np.ndarray) -> bool:
        rows_path = path.with_suffix(".rows.npy")
        return path.exists() and rows_path.exists() and bool(np.isin(rows, np.load(rows_path)).all())

    def _compute(self, todo, images, prefix_model, shape, stored, batch_size, should_stop, progress):
        """The missing passes as one stream of (image, flipped or not): batches mix the passes, so
        only the stream's last batch is padded (to `padded_size`'s ladder: few shapes to compile).
        One trace serves every batch size: a second one for the last batch cost a cold job a
        trace."""
        on_disk = np.uint16 if stored == BFLOAT16 else stored  # .npy has no bfloat16: its bits
        partial = [path.with_name(path.stem + ".partial.npy") for path, _, _ in todo]
        outs = [np.lib.format.open_memmap(tmp, mode="w+", dtype=on_disk, shape=shape) for tmp in partial]
        rows = np.concatenate([pass_rows for _, pass_rows, _ in todo])
        which = np.concatenate([np.full(len(pass_rows), k) for k, (_, pass_rows, _) in enumerate(todo)])
        flipped = np.array([flip for _, _, flip in todo])[which]
        forward = tf.function(  # traced once for the stream, its last batch's size included
            lambda x: tf.cast(prefix_model(x, training=False), stored),
            input_signature=[tf.TensorSpec((None, *images.shape[1:]), images.dtype)],
            autograph=False,
        )
        for start in range(0, len(rows), batch_size):
            if should_stop():
                del outs
                for tmp in partial:
                    tmp.unlink(missing_ok=True)
                raise Cancelled()
            part = slice(start, start + batch_size)
            batch = images[rows[part]]
            batch[flipped[part]] = batch[flipped[part]][:, :, ::-1, :]
            padding = padded_size(len(batch), batch_size) - len(batch)
            if padding:
                batch = np.concatenate([batch, np.zeros((padding, *batch.shape[1:]), batch.dtype)])
            features = forward(tf.constant(batch)).numpy()[: len(batch) - padding].view(on_disk)
            for k, out in enumerate(outs):
                mine = which[part] == k
                out[rows[part][mine]] = features[mine]
            if progress:
                progress(min(start + batch_size, len(rows)), len(rows))
        for out, tmp, (path, pass_rows, _) in zip(outs, partial, todo):
            out.flush()
            rows_path = path.with_suffix(".rows.npy")
            rows_path.unlink(missing_ok=True)  # the rows file is written last: it marks the data complete
            os.replace(tmp, path)
            rows_tmp = rows_path.with_name(rows_path.stem + ".partial.npy")
            np.save(rows_tmp, pass_rows)
            os.replace(rows_tmp, rows_path)
        del outs


def storage_dtype(prefix_model) -> np.dtype:
    """Features are stored in the type the prefix computes in: under bfloat16 or float16 that is
    lossless (the values are already of that type) and halves the disk and page cache."""
    name = str(getattr(prefix_model.output.dtype, "name", prefix_model.output.dtype))
    return {"bfloat16": BFLOAT16, "float16": np.dtype(np.float16)}.get(name, np.dtype(np.float32))


def _load(path: Path, stored: np.dtype) -> np.ndarray:
    array = np.load(path, mmap_mode="r")
    return array.view(BFLOAT16) if stored == BFLOAT16 else array
