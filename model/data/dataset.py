"""Prepare a dataset once: decode and resize every image into a memory-mapped uint8 array.

No epoch ever decodes a JPEG again. The store is a folder:
`images.npy` (N, 227, 227, 3) uint8 RGB · `labels.npy` (N,) int32 · `splits.npy` (N,) int8
(0 train, 1 val, 2 test) · `manifest.json` (classes, counts, rejected files, fingerprint, preprocessing).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import numpy as np

from model.data.preprocess import ImageError, PreprocessSpec, load_image
from model.data.sources import SPLITS, ArchiveLimits, DatasetError, Listing, list_source

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff")

SPLIT_CODES = {name: code for code, name in enumerate(SPLITS)}


@dataclass(frozen=True)
class SplitFractions:
    val: float = 0.15
    test: float = 0.15
    seed: int = 0

    def __post_init__(self) -> None:
        for name, value in (("val_fraction", self.val), ("test_fraction", self.test)):
            if not 0.0 <= value < 1.0:
                raise DatasetError(f"{name} must be in [0, 1); got {value}")
        if self.val <= 0.0:
            raise DatasetError("val_fraction must be above 0: training needs a validation set")
        if self.val + self.test >= 1.0:
            raise DatasetError(f"val_fraction + test_fraction must be below 1; got {self.val + self.test}")


class PreparedDataset:
    """A prepared store, opened read-only and memory-mapped."""

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)
        manifest_path = self.root / "manifest.json"
        if not manifest_path.is_file():
            raise DatasetError(f"{self.root} is not a prepared dataset (no manifest.json)")
        self.manifest = json.loads(manifest_path.read_text())
        self.classes: list[str] = self.manifest["classes"]
        self.fingerprint: str = self.manifest["fingerprint"]
        self.preprocess = PreprocessSpec.from_dict(self.manifest["preprocess"])
        self.images = np.load(self.root / "images.npy", mmap_mode="r")
        self.labels = np.load(self.root / "labels.npy")
        self.splits = np.load(self.root / "splits.npy")

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def indices(self, split: str) -> np.ndarray:
        return np.flatnonzero(self.splits == SPLIT_CODES[split])

    def __len__(self) -> int:
        return len(self.labels)


def prepare_dataset(
    source: str | os.PathLike,
    out_dir: str | os.PathLike,
    fractions: SplitFractions = SplitFractions(),
    preprocess: PreprocessSpec = PreprocessSpec(),
    limits: ArchiveLimits = ArchiveLimits(),
    workers: int | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> PreparedDataset:
    """Decode `source` (ZIP, folder or text index) into a store at `out_dir` and open it.

    Unreadable images are listed in the manifest's `rejected` with the reason and left out.
    Raises `DatasetError` when what is left cannot train (fewer than two classes, a class with
    too few images for the split).
    """
    out_dir = Path(out_dir)
    listing = inspect_source(source, limits)
    work = out_dir.with_name(out_dir.name + ".partial")
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    try:
        arrays, kept, rejected = _decode_all(
            listing, work, preprocess, limits.max_image_pixels, workers, progress
        )
        classes = _class_names({entry.label for entry in kept})
        empty = sorted(listing.class_folders - set(classes))
        if empty:
            raise DatasetError(
                f"class folder(s) {', '.join(empty)} hold no readable images; add images or remove the folder"
            )
        if len(classes) < 2:
            raise DatasetError(
                f"need at least 2 classes with readable images; "
                f"found {len(classes)} ({', '.join(classes) or 'none'})"
            )
        labels = np.array([classes.index(entry.label) for entry in kept], dtype=np.int32)
        splits = _assign_splits(kept, labels, classes, fractions, listing.explicit_splits)
        fingerprint = _fingerprint(arrays, labels)
        np.save(work / "labels.npy", labels)
        np.save(work / "splits.npy", splits)
        manifest = {
            "classes": classes,
            "num_images": len(kept),
            "splits": {name: int((splits == code).sum()) for name, code in SPLIT_CODES.items()},
            "rejected": listing.rejected + rejected,
            "files": [entry.path for entry in kept],
            "fingerprint": fingerprint,
            "preprocess": json.loads(preprocess.to_json()),
            "split_seed": fractions.seed,
        }
        (work / "manifest.json").write_text(json.dumps(manifest, indent=1))
        shutil.rmtree(out_dir, ignore_errors=True)
        os.replace(work, out_dir)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    return PreparedDataset(out_dir)


def inspect_source(source, limits: ArchiveLimits = ArchiveLimits(), name: str | None = None) -> Listing:
    """Everything the listing alone can refuse, without decoding: what an upload is checked with."""
    listing = list_source(source, limits, name)
    if not listing.entries:
        raise DatasetError(
            "no images found: expected one folder per class, train/ and val/ folders, or a text index"
        )
    with_images = {entry.label for entry in listing.entries if _may_be_image(entry.path)}
    empty = sorted(listing.class_folders - with_images)
    if empty:
        raise DatasetError(
            f"class folder(s) {', '.join(empty)} hold no image files; add images or remove the folder"
        )
    if len(with_images) < 2:
        raise DatasetError(
            f"need at least 2 classes with image files; found {len(with_images)} "
            f"({', '.join(sorted(with_images)) or 'none'})"
        )
    return listing


def _may_be_image(path: str) -> bool:
    suffix = PurePosixPath(path).suffix.lower()
    return suffix in IMAGE_SUFFIXES or suffix == ""


def describe_member_error(exc: Exception) -> str:
    """Why one file of a dataset could not be read, in words (zipfile's errors are terse)."""
    text = str(exc)
    if isinstance(exc, RuntimeError) and "encrypted" in text:
        return "encrypted (password-protected) in the ZIP: not read"
    if "CRC" in text:
        return "corrupt in the ZIP (bad CRC checksum)"
    if isinstance(exc, NotImplementedError) or "compression method" in text:
        return f"stored with a compression method that cannot be read ({text})"
    if isinstance(exc, OSError):
        return f"cannot read file: {exc}"
    return f"cannot read file ({exc.__class__.__name__}: {text})"


def _decode_all(listing: Listing, work: Path, spec: PreprocessSpec, max_pixels: int, workers, progress):
    entries = listing.entries
    size = spec.image_size
    decoded = np.lib.format.open_memmap(
        work / "images.tmp.npy", mode="w+", dtype=np.uint8, shape=(len(entries), size, size, 3)
    )
    ok = np.zeros(len(entries), dtype=bool)
    rejected = []

    def decode(index: int):
        entry = entries[index]
        try:
            decoded[index] = load_image(listing.read(entry.path), spec, max_pixels)
            ok[index] = True
        except ImageError as exc:
            return {"path": entry.path, "reason": str(exc)}
        except Exception as exc:  # noqa: BLE001 - one unreadable member never fails the dataset
            return {"path": entry.path, "reason": describe_member_error(exc)}
        return None

    pool = ThreadPoolExecutor(max_workers=workers or min(8, os.cpu_count() or 1))
    try:
        for done, failure in enumerate(pool.map(decode, range(len(entries))), start=1):
            if failure:
                rejected.append(failure)
            if progress:
                progress(done, len(entries))  # may raise to stop: the rest is then not decoded
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
    keep = np.flatnonzero(ok)
    images = np.lib.format.open_memmap(
        work / "images.npy", mode="w+", dtype=np.uint8, shape=(len(keep), size, size, 3)
    )
    for start in range(0, len(keep), 256):
        images[start : start + 256] = decoded[keep[start : start + 256]]
    images.flush()
    (work / "images.tmp.npy").unlink()
    return images, [entries[i] for i in keep], rejected


def _class_names(labels: set[str]) -> list[str]:
    if labels and all(label.lstrip("-").isdigit() for label in labels):
        return sorted(labels, key=int)
    return sorted(labels)


def _assign_splits(
    entries, labels: np.ndarray, classes: list[str], fractions: SplitFractions, explicit: bool
) -> np.ndarray:
    if explicit:
        splits = np.array([SPLIT_CODES[entry.split] for entry in entries], dtype=np.int8)
        for name in ("train", "val"):
            missing = [
                c for i, c in enumerate(classes) if not np.any((labels == i) & (splits == SPLIT_CODES[name]))
            ]
            if name == "train" and missing:
                raise DatasetError(f"class(es) {', '.join(missing)} have no images in train/")
        if not np.any(splits == SPLIT_CODES["val"]):
            raise DatasetError("the validation split has no readable images")
        return splits
    rng = np.random.default_rng(fractions.seed)
    splits = np.zeros(len(labels), dtype=np.int8)
    for index, name in enumerate(classes):
        members = rng.permutation(np.flatnonzero(labels == index))
        n = len(members)
        n_val = max(1, round(n * fractions.val))
        n_test = max(1, round(n * fractions.test)) if fractions.test > 0 else 0
        if n - n_val - n_test < 1:
            need = 2 + (1 if fractions.test > 0 else 0)
            raise DatasetError(
                f"class {name!r} has {n} image(s); "
                f"a train/val{'/test' if n_test else ''} split needs at least {need}"
            )
        splits[members[:n_val]] = SPLIT_CODES["val"]
        splits[members[n_val : n_val + n_test]] = SPLIT_CODES["test"]
    return splits


def _fingerprint(images: np.ndarray, labels: np.ndarray) -> str:
    digest = hashlib.sha256()
    for start in range(0, len(images), 256):
        digest.update(np.ascontiguousarray(images[start : start + 256]).tobytes())
    digest.update(labels.tobytes())
    return digest.hexdigest()
