"""Admission to /predict: a bounded number of requests inside the API at once, in threads of their own.

Beyond the bound a request is answered 503 with `Retry-After` at once, instead of queueing without
end: memory stays bounded, and the health checks and other routes keep the shared thread pool.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

import anyio.to_thread

from core.errors import ServiceBusy

T = TypeVar("T")


class PredictGate:
    def __init__(self, capacity: int):
        self.capacity, self.inside = capacity, 0  # changed on the event loop only: no lock needed
        self.limiter = anyio.CapacityLimiter(capacity)

    @contextmanager
    def admit(self) -> Iterator[None]:
        if self.inside >= self.capacity:
            raise ServiceBusy(
                f"/predict is serving {self.capacity} requests (FINETUNE_PREDICT_QUEUE_SIZE); "
                "try again shortly"
            )
        self.inside += 1
        try:
            yield
        finally:
            self.inside -= 1

    async def run(self, function: Callable[..., T], *args) -> T:
        """`function(*args)` in a thread, counted against this gate's threads, not the shared pool's."""
        return await anyio.to_thread.run_sync(function, *args, limiter=self.limiter)
