"""Concurrent predictions share forward passes, each caller gets its own rows, errors reach all."""

from __future__ import annotations

import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor

import numpy as np
import pytest

from api.batching import MicroBatcher
from model.network.padding import full_size, padded_size
from testkit.service import wait_for


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


def until(condition) -> None:
    wait_for(condition, timeout=5, interval=0.001)


def until_queued(batcher: MicroBatcher, requests: int) -> None:
    until(lambda: batcher._queue.qsize() >= requests)


class Gate:
    """A forward whose first call waits until `opened` is set: what arrives meanwhile queues up."""

    def __init__(self):
        self.calls: list[int] = []
        self.opened = threading.Event()

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        self.calls.append(len(batch))
        self.opened.wait(5)
        return batch.reshape(len(batch), -1)[:, :2].astype(np.float32)

    def queue_behind_the_first(self, batcher: MicroBatcher, counts: list[int], close: bool = False):
        """One request runs, requests of `counts` images queue meanwhile; all their results."""
        with ThreadPoolExecutor(len(counts) + 1) as pool:
            first = pool.submit(batcher, images(100))
            until(lambda: self.calls)
            futures = []
            for marker, count in enumerate(counts, start=1):
                futures.append(pool.submit(batcher, images(marker, count)))
                until_queued(batcher, marker)  # queued in this order
            if close:
                batcher.close()
            self.opened.set()
            assert (first.result() == 100).all()
            results = [future.result() for future in futures]
        for marker, (count, rows) in enumerate(zip(counts, results), start=1):
            assert rows.shape == (count, 2) and (rows == marker).all()  # its own rows


@pytest.mark.parametrize(
    ("counts", "batches"),
    [
        ([1] * 9, [1, 8, 1]),  # 9 would run as 12: the ninth waits for the next batch instead
        ([1] * 7, [1, 6, 1]),  # as many rows held as padded: held
        ([1] * 11, [1, 12]),  # padding 1 row wastes less than holding 3 back
        ([5, 5], [1, 12]),  # no oldest requests add up to 8: padded
        ([3, 2, 3, 1], [1, 8, 1]),
        ([1] * 8, [1, 8]),
    ],
)
def test_a_batch_between_two_sizes_holds_the_newest_requests_back_when_padding_wastes_more(counts, batches):
    gate = Gate()
    batcher = MicroBatcher(gate, max_batch=32)
    try:
        gate.queue_behind_the_first(batcher, counts)
    finally:
        batcher.close()
    assert gate.calls == batches


def test_requests_queued_when_the_batcher_closes_are_all_answered():
    gate = Gate()
    batcher = MicroBatcher(gate, max_batch=32)
    gate.queue_behind_the_first(batcher, [1] * 9, close=True)
    assert gate.calls == [1, 12]  # closing runs what is queued, nothing held


def in_daemon_thread(call, *args) -> Future:
    """`call(*args)` in a daemon thread: a request the batcher never answers cannot hang the tests."""
    future: Future = Future()

    def run():
        try:
            future.set_result(call(*args))
        except Exception as exc:  # noqa: BLE001 - the caller's future raises it
            future.set_exception(exc)

    threading.Thread(target=run, daemon=True).start()
    return future


def test_a_batch_that_cannot_be_built_fails_its_requests_and_the_batcher_goes_on():
    gate = Gate()
    batcher = MicroBatcher(gate, max_batch=32)
    try:
        first = in_daemon_thread(batcher, images(100))
        until(lambda: gate.calls)
        odd = in_daemon_thread(batcher, np.zeros((1, 10, 10, 3), np.uint8))  # not 227×227
        until_queued(batcher, 1)
        good = in_daemon_thread(batcher, images(1))
        until_queued(batcher, 2)
        gate.opened.set()
        assert (first.result(timeout=5) == 100).all()
        for future in (odd, good):  # one batch: both get the error
            with pytest.raises(ValueError, match="concatenat"):
                future.result(timeout=5)
        assert (in_daemon_thread(batcher, images(3)).result(timeout=5) == 3).all()  # and it goes on
    finally:
        batcher.close()


def test_a_request_after_close_is_answered_alone():
    """A predictor evicted from the cache while a request holds it: that request still runs."""
    calls: list[int] = []
    batcher = MicroBatcher(slow_forward(calls), max_batch=32)
    batcher.close()
    batcher._thread.join(5)
    rows = in_daemon_thread(batcher, images(5, count=3)).result(timeout=5)
    assert rows.shape == (3, 2) and (rows == 5).all() and calls == [3]


def test_padded_sizes():
    sizes = [padded_size(n, 64) for n in range(1, 65)]
    assert sorted(set(sizes)) == [1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64]  # few shapes to compile
    assert all(n <= size <= max(n, 1.5 * (n - 1)) for n, size in enumerate(sizes, start=1))  # ≤ ⅓ padding
    assert [padded_size(n, 32) for n in (9, 16, 17, 25, 32)] == [12, 16, 24, 32, 32]
    assert padded_size(25, 20) == 25 and padded_size(13, 20) == 16 and padded_size(17, 20) == 20
    assert padded_size(40, 32) == 40  # one request larger than a batch runs as it is
    assert [full_size(n) for n in range(1, 26)] == [
        1, 2, 3, 4, 4, 6, 6, 8, 8, 8, 8, 12, 12, 12, 12, 16, 16, 16, 16, 16, 16, 16, 16, 24, 24
    ]  # fmt: skip


def test_a_forward_pass_that_never_ends_is_a_503_after_the_timeout_not_a_parked_thread():
    from core.errors import ServiceBusy

    release = threading.Event()

    def stuck(batch):
        release.wait(timeout=30)
        return np.zeros((len(batch), 2), np.float32)

    batcher = MicroBatcher(stuck, max_batch=4, timeout=0.2)
    try:
        with pytest.raises(ServiceBusy, match="did not finish within 0.2 s") as raised:
            batcher(np.zeros((1, 227, 227, 3), np.uint8))
        assert raised.value.status_code == 503 and raised.value.headers == {"Retry-After": "1"}
    finally:
        release.set()
        batcher.close()


def test_the_predict_gate_admits_its_capacity_and_answers_the_next_at_once():
    from api.predict_gate import PredictGate
    from core.errors import ServiceBusy

    gate = PredictGate(2)
    with gate.admit(), gate.admit():
        with pytest.raises(ServiceBusy, match="serving 2 requests"):
            with gate.admit():
                pass
        assert gate.inside == 2
    assert gate.inside == 0
    with gate.admit():
        assert gate.inside == 1
