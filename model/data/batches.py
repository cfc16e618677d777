"""Training batches in a fixed order: from the cached features, or from the images themselves."""

from __future__ import annotations

import numpy as np

from model.data.dataset import PreparedDataset


class Batches:
    """Assembles batches from the cached features, or from the images when nothing is cached."""

    def __init__(self, dataset: PreparedDataset):
        self.images = dataset.images
        self.plain: np.ndarray | None = None
        self.flipped: np.ndarray | None = None
        self.cached = False

    def train_batch(self, rows: np.ndarray, flips: np.ndarray) -> np.ndarray:
        if self.cached:
            x = np.asarray(self.plain[rows])
            if self.flipped is not None and flips.any():
                x[flips] = self.flipped[rows[flips]]
            return x
        x = np.asarray(self.images[rows])
        x[flips] = x[flips][:, :, ::-1, :]
        return x

    @property
    def _examples(self) -> np.ndarray:
        """What a batch is made of: the cached features, or the images."""
        return self.plain if self.cached else self.images

    def example(self) -> tuple[tuple[int, ...], np.dtype]:
        """The shape and type of one example in a batch (a cached feature vector, or an image)."""
        return tuple(self._examples.shape[1:]), self._examples.dtype

    def eval_batch(self, rows: np.ndarray) -> np.ndarray:
        return np.asarray(self._examples[rows])


def epoch_order(seed: int, epoch: int, train_rows: np.ndarray, flip: bool) -> tuple[np.ndarray, np.ndarray]:
    """The data order of an epoch depends only on (seed, epoch): a resumed run sees the same."""
    rng = np.random.default_rng([seed, epoch])
    order = rng.permutation(train_rows)
    flips = rng.random(len(order)) < 0.5 if flip else np.zeros(len(order), dtype=bool)
    return order, flips
