"""Generated images and datasets: classes a small network can tell apart, made in milliseconds."""

from __future__ import annotations

import io
import struct
import zipfile
import zlib
from pathlib import Path

import numpy as np
from PIL import Image

PALETTE = [(220, 40, 40), (40, 200, 60), (40, 60, 220), (230, 200, 40)]


def make_image(class_index: int, seed: int, size: tuple[int, int] = (64, 48), fmt: str = "JPEG") -> bytes:
    """An image whose dominant colour and stripe direction depend on the class."""
    rng = np.random.default_rng(seed)
    width, height = size
    base = np.array(PALETTE[class_index % len(PALETTE)], dtype=np.float32)
    noise = rng.normal(0, 25, size=(height, width, 3))
    stripes = (
        (np.arange(width)[None, :] // 6 % 2) if class_index % 2 else (np.arange(height)[:, None] // 6 % 2)
    )
    pixels = np.clip(base + noise + 40 * stripes[..., None], 0, 255).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format=fmt)
    return buffer.getvalue()


def class_folder_zip(
    path: Path,
    classes=("cat", "dog"),
    per_class: int = 10,
    extra: dict[str, bytes] | None = None,
    size: tuple[int, int] = (64, 48),
) -> Path:
    """A ZIP with one folder per class."""
    with zipfile.ZipFile(path, "w") as archive:
        for index, name in enumerate(classes):
            for i in range(per_class):
                archive.writestr(
                    f"{name}/{name}_{i}.jpg", make_image(index, seed=index * 1000 + i, size=size)
                )
        for member, data in (extra or {}).items():
            archive.writestr(member, data)
    return path


def class_folder_tree(root: Path, classes=("cat", "dog"), per_class: int = 10) -> Path:
    for index, name in enumerate(classes):
        (root / name).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            (root / name / f"{i}.jpg").write_bytes(make_image(index, seed=index * 1000 + i))
    return root


def png_header_only(width: int, height: int) -> bytes:
    """A PNG that declares width × height RGB pixels but carries almost no data (a bomb's shape)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b""))
        + chunk(b"IEND", b"")
    )
