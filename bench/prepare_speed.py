"""Decoding 12 MP phone-sized JPEGs into network input: full decode against the JPEG draft
(DCT scaling), side by side in one run, on one core and on every core; and libjpeg's scaled decode
alone, with nothing around it, which bounds the ratio any draft can reach (the entropy decoding of
every compressed bit remains).

    python -m bench.prepare_speed --images 24
"""

from __future__ import annotations

import argparse
import io
import os
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from PIL import Image

from model.data.preprocess import PreprocessSpec, load_image


def phone_photo(seed: int, size=(4000, 3000)) -> bytes:
    """A smooth 12 MP image with some grain, saved as a camera would (quality 90)."""
    rng = np.random.default_rng(seed)
    base = Image.fromarray(rng.integers(0, 255, size=(48, 64, 3), dtype=np.uint8)).resize(size, Image.BICUBIC)
    grain = rng.normal(0, 6, size=(size[1], size[0], 3))
    pixels = np.clip(np.asarray(base, dtype=np.float32) + grain, 0, 255).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


def rate(photos: list[bytes], decode, workers: int) -> tuple[float, list]:
    """Images per second that `decode` handles on `workers` threads, and what it returned."""
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=workers) as pool:
        results = list(pool.map(decode, photos))
    return len(photos) / (time.perf_counter() - started), results


def bare_draft_decode(data: bytes, side: int) -> None:
    """libjpeg's scaled decode alone (the draft's 1/8 for a 12 MP photo), nothing before or after
    it: every compressed bit is still entropy-decoded, which bounds what any draft can gain."""
    image = Image.open(io.BytesIO(data))
    image.draft(image.mode, (side, side))
    image.load()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--images", type=int, default=24)
    args = parser.parse_args()
    photos = [phone_photo(seed) for seed in range(args.images)]
    cores = os.cpu_count() or 1
    megabytes = sum(map(len, photos)) / len(photos) / 1e6
    print(f"{args.images} JPEGs of 4000×3000 ({megabytes:.1f} MB each), {cores} cores")
    full_spec, draft_spec = PreprocessSpec(jpeg_draft=False), PreprocessSpec()
    full_decode = lambda data: load_image(data, full_spec)
    draft_decode = lambda data: load_image(data, draft_spec)
    rate(photos[:2], full_decode, 1)  # warm-up
    for workers in (1, cores):
        full, full_pixels = rate(photos, full_decode, workers)
        draft, draft_pixels = rate(photos, draft_decode, workers)
        bare, _ = rate(photos, lambda data: bare_draft_decode(data, draft_spec.image_size), workers)
        difference = np.abs(np.stack(full_pixels).astype(np.float32) - np.stack(draft_pixels)).mean()
        print(f"{workers} thread(s): full decode {full:.1f} img/s, draft {draft:.1f} img/s, "
              f"ratio {draft / full:.2f}×, mean pixel difference {difference:.2f}; libjpeg's "
              f"scaled decode alone {bare:.1f} img/s, so no draft exceeds {bare / full:.2f}×")  # fmt: skip


if __name__ == "__main__":
    main()
