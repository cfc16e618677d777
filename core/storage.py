"""Where files live under FINETUNE_DATA_DIR. One place, so api and worker always agree."""

from __future__ import annotations

from pathlib import Path

from core.config import Settings


class Storage:
    def __init__(self, settings: Settings):
        self.root = settings.data_dir

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

    @property
    def feature_cache_dir(self) -> Path:
        return self.root / "features"

    @property
    def tmp_dir(self) -> Path:
        return self.root / "tmp"
