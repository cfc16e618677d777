"""Exports are loaded once, even under concurrent requests, and the least recently used is dropped."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

from api.predictors import PredictorCache


def test_loads_once_under_concurrency():
    cache, loads = PredictorCache(capacity=2), []

    def load():
        loads.append(threading.get_ident())
        time.sleep(0.2)  # a slow SavedModel load
        return object()

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda _: cache.get("job:a", load), range(8)))
    assert len(loads) == 1 and all(r is results[0] for r in results)


def test_least_recently_used_is_evicted():
    cache = PredictorCache(capacity=2)
    a = cache.get("a", object)
    cache.get("b", object)
    assert cache.get("a", object) is a  # touch a: b is now the oldest
    cache.get("c", object)
    assert "a" in cache and "c" in cache and "b" not in cache
