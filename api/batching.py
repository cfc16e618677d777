"""Dynamic micro-batching for /predict: concurrent requests share one forward pass.

Each loaded model gets one batching thread. A request's decoded images are queued; the thread
takes whatever is queued (waiting at most `max_wait` for more, which on a CPU is a few
milliseconds), up to `max_batch` images, pads the batch to one of a few fixed sizes so the graph
never retraces for a new size, runs it, and hands each request its own rows back. On a CPU a
batch of 16 costs far less than 16 batches of one, so 16 clients get several times the
throughput of one without a slower single request.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future

import numpy as np

from model.padding import padded_size


class MicroBatcher:
    def __init__(
        self,
        forward: Callable[[np.ndarray], np.ndarray],
        max_batch: int = 32,
        max_wait: float = 0.0,
        on_batch: Callable[[int], None] | None = None,
    ):
        self.forward, self.max_batch, self.max_wait, self.on_batch = forward, max_batch, max_wait, on_batch
        self.batch_sizes: list[int] = []  # what ran, padded, for tests and metrics
        self._queue: queue.Queue[tuple[np.ndarray, Future] | None] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="predict-batcher", daemon=True)
        self._thread.start()

    def __call__(self, images: np.ndarray) -> np.ndarray:
        """Probabilities for `images` (N×227×227×3 uint8), computed in a shared batch."""
        if not len(images):
            return self.forward(images)
        future: Future = Future()
        self._queue.put((images, future))
        return future.result()

    def close(self) -> None:
        self._queue.put(None)

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            pending, count = [first], len(first[0])
            deadline = time.monotonic() + self.max_wait
            while count < self.max_batch:
                try:
                    item = self._queue.get(timeout=max(0.0, deadline - time.monotonic()))
                except queue.Empty:
                    break
                if item is None:
                    self._queue.put(None)  # close after this batch
                    break
                pending.append(item)
                count += len(item[0])
            self._run_batch(pending, count)

    def _run_batch(self, pending: list[tuple[np.ndarray, Future]], count: int) -> None:
        size = padded_size(count, self.max_batch)
        batch = np.concatenate([images for images, _ in pending])
        if size > count:
            batch = np.concatenate([batch, np.zeros((size - count, *batch.shape[1:]), batch.dtype)])
        try:
            probabilities = np.asarray(self.forward(batch))
        except Exception as exc:  # noqa: BLE001 - every request in the batch gets the error
            for _, future in pending:
                future.set_exception(exc)
            return
        self.batch_sizes.append(size)
        if self.on_batch:
            self.on_batch(size)
        start = 0
        for images, future in pending:
            future.set_result(probabilities[start : start + len(images)])
            start += len(images)
