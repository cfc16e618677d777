"""The batch sizes a batch is padded to: few shapes, so nothing retraces or recompiles per size."""

from __future__ import annotations


def padded_size(count: int, max_batch: int) -> int:
    """The smallest size ≥ count of the ladder 1, 2, 3, 4, 6, 8, 12, 16, 24, 32 … (powers of two and
    their 1.5 multiples), capped at max_batch: few shapes, and at most a third of a batch padding.

    Under 16 clients /predict's batches of 9-11 were common, and powers of two padded them to 16;
    this ladder wastes less and served more requests a second. A feature pass's last batch takes it
    too: 82 images run as 96, not 128.
    """
    cap = max(max_batch, count)  # one request larger than a batch runs as it is
    return min(next(size for size in _ladder() if size >= count), cap)


def full_size(count: int) -> int:
    """The largest size ≤ count of the same ladder: what a batch of `count` runs as unpadded, once
    the requests past it wait for the next batch."""
    below = 1
    for size in _ladder():
        if size > count:
            return below
        below = size


def _ladder():
    """1, 2, 3, 4, 6, 8, 12, 16 …: the powers of two and, from 2 on, their 1.5 multiples."""
    power = 1
    while True:
        yield power
        if power >= 2:
            yield power * 3 // 2
        power *= 2
