"""Read-only views into prepared datasets and finished runs: image listings, stored images, and
the best epoch's per-image predictions. The dashboard and any client use the same ones."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np

from core.errors import ClassNotFound, NotFound
from core.storage import Storage

SPLIT_NAMES = ("train", "val", "test")


class DatasetImages:
    """The prepared store of one dataset: paths, labels and splits, images memory-mapped."""

    def __init__(self, folder: Path):
        manifest_path = folder / "manifest.json"
        if not manifest_path.is_file():
            raise NotFound("the dataset is not prepared yet; its images are listed once it is ready")
        self.manifest = json.loads(manifest_path.read_text())
        self.classes: list[str] = self.manifest["classes"]
        self.labels = np.load(folder / "labels.npy")
        self.splits = np.load(folder / "splits.npy")
        self.folder = folder

    def page(self, label: str | None, split: str | None, offset: int, limit: int) -> tuple[list[dict], int]:
        keep = np.ones(len(self.labels), dtype=bool)
        if label is not None:
            if label not in self.classes:
                raise ClassNotFound(f"no class {label!r} in this dataset (it has {', '.join(self.classes)})")
            keep &= self.labels == self.classes.index(label)
        if split is not None:
            keep &= self.splits == SPLIT_NAMES.index(split)
        indices = np.flatnonzero(keep)
        files = self.manifest.get("files") or []
        rows = [
            {
                "index": int(i),
                "path": files[i] if i < len(files) else f"#{i}",
                "label": self.classes[self.labels[i]],
                "split": SPLIT_NAMES[self.splits[i]],
            }
            for i in indices[offset : offset + limit]
        ]
        return rows, len(indices)

    def png(self, index: int) -> bytes:
        from PIL import Image

        if not 0 <= index < len(self.labels):
            raise NotFound(
                f"no image {index}: the dataset has {len(self.labels)} (0 … {len(self.labels) - 1})"
            )
        images = np.load(self.folder / "images.npy", mmap_mode="r")
        buffer = io.BytesIO()
        Image.fromarray(np.asarray(images[index])).save(buffer, format="PNG")
        return buffer.getvalue()

    @property
    def etag_prefix(self) -> str:
        return self.manifest["fingerprint"][:16]


def job_predictions(
    storage: Storage, job_id: str, classes: list[str], split: str, wrong_only: bool, offset: int, limit: int
) -> tuple[list[dict], int]:
    """The best epoch's predictions of one split (val, or test once the job has ended)."""
    from model.exports.predictions import load_predictions

    records = load_predictions(storage.run_dir(job_id)).get(split, [])
    if wrong_only:
        records = [r for r in records if r["top"][0][0] != r["label"]]

    def name(index: int) -> str:
        return classes[index] if 0 <= index < len(classes) else str(index)

    rows = [
        {
            "index": r["index"],
            "label": name(r["label"]),
            "predicted": name(r["top"][0][0]),
            "probability": r["top"][0][1],
            "correct": r["top"][0][0] == r["label"],
            "top": [{"class_index": c, "label": name(c), "probability": p} for c, p in r["top"]],
        }
        for r in records[offset : offset + limit]
    ]
    return rows, len(records)
