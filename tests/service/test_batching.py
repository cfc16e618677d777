"""Concurrent predictions share forward passes, each caller gets its own rows, errors reach all."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from api.batching import MicroBatcher
from model.padding import padded_size


def slow_forward(calls: list):
    def forward(batch: np.ndarray) -> np.ndarray:
        calls.append(len(batch))
        time.sleep(0.05)  # a model call: requests arriving meanwhile queue up
        return batch.reshape(len(batch), -1)[:, :2].astype(np.float32)  # rows that identify their image

    return forward


def images(marker: int, count: int = 1) -> np.ndarray:
    return np.full((count, 227, 227, 3), marker, dtype=np.uint8)


def test_sixteen_concurrent_requests_share_a_few_padded_batches():
    calls: list[int] = []
    batcher = MicroBatcher(slow_forward(calls), max_batch=32, max_wait=0.002)
    try:
        with ThreadPoolExecutor(16) as pool:
            results = list(pool.map(lambda i: batcher(images(i + 1, count=1 + i % 2)), range(16)))
    finally:
        batcher.close()
    for i, rows in enumerate(results):
        assert rows.shape == (1 + i % 2, 2) and (rows == i + 1).all()  # its own rows, in order
    assert len(calls) < 16 and sum(calls) >= 24
    assert all(size in (1, 2, 3, 4, 6, 8, 12, 16, 24, 32) for size in calls)  # few shapes, no retracing


def test_one_request_alone_runs_at_once():
    calls: list[int] = []
    batcher = MicroBatcher(slow_forward(calls), max_batch=32, max_wait=0.002)
    try:
        started = time.perf_counter()
        assert batcher(images(7, count=5)).shape == (5, 2)
        assert time.perf_counter() - started < 0.5 and calls == [6]
    finally:
        batcher.close()


def test_an_error_reaches_every_request_of_its_batch():
    release = threading.Event()

    def failing(batch):
        release.wait(1)
        raise RuntimeError("model failed")

    batcher = MicroBatcher(failing, max_batch=32, max_wait=0.05)
    try:
        with ThreadPoolExecutor(4) as pool:
            futures = [pool.submit(batcher, images(i)) for i in range(4)]
            release.set()
            for future in futures:
                with pytest.raises(RuntimeError, match="model failed"):
                    future.result()
    finally:
        batcher.close()


def test_padded_sizes():
    sizes = [padded_size(n, 64) for n in range(1, 65)]
    assert sorted(set(sizes)) == [1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64]  # few shapes to compile
    assert all(n <= size <= max(n, 1.5 * (n - 1)) for n, size in enumerate(sizes, start=1))  # ≤ ⅓ padding
    assert [padded_size(n, 32) for n in (9, 16, 17, 25, 32)] == [12, 16, 24, 32, 32]
    assert padded_size(25, 20) == 25 and padded_size(13, 20) == 16 and padded_size(17, 20) == 20
    assert padded_size(40, 32) == 40  # one request larger than a batch runs as it is
