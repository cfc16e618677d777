"""Loaded models for /predict: each export is loaded once, lazily, and kept in a small LRU cache."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Any


class PredictorCache:
    def __init__(self, capacity: int, on_evict: Callable[[Any], None] | None = None):
        self.capacity, self.on_evict = capacity, on_evict
        self._items: OrderedDict[str, Any] = OrderedDict()
        self._lock = threading.Lock()
        self._loading: dict[str, threading.Lock] = {}

    def get(self, key: str, load: Callable[[], Any]) -> Any:
        """The cached predictor for `key`, loading it once even when many requests ask at the same time."""
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
            key_lock = self._loading.setdefault(key, threading.Lock())
        with key_lock:
            with self._lock:
                if key in self._items:
                    return self._items[key]
            predictor = load()
            with self._lock:
                self._items[key] = predictor
                self._items.move_to_end(key)
                while len(self._items) > self.capacity:
                    _, evicted = self._items.popitem(last=False)
                    if self.on_evict:
                        self.on_evict(evicted)
                self._loading.pop(key, None)
            return predictor

    def __contains__(self, key: str) -> bool:
        with self._lock:
            return key in self._items
