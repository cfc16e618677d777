"""Where files live under FINETUNE_DATA_DIR. One place, so api and worker always agree."""

from __future__ import annotations

import os
from pathlib import Path

from core.config import Settings


class Storage:
    def __init__(self, settings: Settings):
        self.root = settings.data_dir

    def shown(self, text: str) -> str:
        """`text` with this host's data folder taken out: what a client reads names paths relative
        to the data folder, which another host may mount elsewhere."""
        return text.replace(f"{self.root}{os.sep}", "").replace(str(self.root), "the data folder")

    def upload_path(self, dataset_id: str) -> Path:
        return self.root / "uploads" / f"{dataset_id}.zip"

    def dataset_dir(self, dataset_id: str) -> Path:
        return self.root / "datasets" / dataset_id

    def run_dir(self, job_id: str) -> Path:
        return self.root / "runs" / job_id

    def export_dir(self, job_id: str) -> Path:
        return self.run_dir(job_id) / "export"

    def tensorboard_dir(self, job_id: str) -> Path:
        return self.run_dir(job_id) / "tensorboard"

    def model_archive(self, job_id: str, fmt: str = "savedmodel") -> Path:
        """The export as a ZIP, built on the first download and kept (an export never changes)."""
        return self.run_dir(job_id) / ("model.zip" if fmt == "savedmodel" else f"model-{fmt}.zip")

    def portable_dir(self, job_id: str, fmt: str) -> Path:
        """The export converted to ONNX or TFLite, on the first download of that format."""
        return self.run_dir(job_id) / "portable" / fmt

    @staticmethod
    def size_bytes(*paths: Path) -> int:
        """Bytes on disk under `paths` (files or folders); what a dataset or job costs.

        A worker may remove files while this counts (a finished job discards its checkpoint): what
        vanishes is not counted, and never an error."""
        total = 0
        for path in paths:
            for folder, _, files in [(path.parent, [], [path.name])] if path.is_file() else os.walk(path):
                for name in files:
                    try:
                        total += os.lstat(os.path.join(folder, name)).st_size
                    except FileNotFoundError:
                        pass
        return total

    def dataset_size(self, dataset_id: str) -> int:
        return self.size_bytes(self.dataset_dir(dataset_id), self.upload_path(dataset_id))

    def job_size(self, job_id: str) -> int:
        return self.size_bytes(self.run_dir(job_id))

    @property
    def feature_cache_dir(self) -> Path:
        return self.root / "features"

    @property
    def compile_cache_dir(self) -> Path:
        return self.root / "compiled"

    @property
    def tmp_dir(self) -> Path:
        return self.root / "tmp"
