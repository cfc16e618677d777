"""One settings class; every knob is an environment variable with the FINETUNE_ prefix."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from core.auth import AuthMode, is_loopback

# The engine's own defaults, repeated so that reading the settings imports no numpy, Pillow or
# TensorFlow (tests/service/test_containers.py checks they agree with `model`).
MAX_IMAGE_PIXELS = 100_000_000
WEIGHTS_FILE_NAME = "bvlc_alexnet.npz"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="FINETUNE_", env_file=".env", extra="ignore")

    data_dir: Path = Field(
        default=Path("data"), description="Datasets, feature caches, checkpoints and exports."
    )
    database_url: str = Field(
        default="", description="SQLAlchemy URL; empty means SQLite in data_dir (the embedded default)."
    )
    broker_url: str = Field(
        default="", description="Celery broker; empty means the filesystem transport in data_dir."
    )
    weights_path: Path | None = Field(
        default=None,
        description="The installed pretrained weights (`finetune download-weights` writes them); "
        "empty means data_dir/bvlc_alexnet.npz.",
    )
    max_upload_bytes: int = Field(default=2 * 1024**3, ge=1, description="Largest dataset upload.")
    max_predict_bytes: int = Field(
        default=16 * 1024**2, ge=1, description="Largest single image at /predict."
    )
    max_image_pixels: int = Field(
        default=MAX_IMAGE_PIXELS,
        ge=1,
        description="Largest image (width × height) accepted at /predict and in datasets; "
        "checked from the header before decoding.",
    )
    max_predict_images: int = Field(
        default=16,
        ge=1,
        description="Most images in one /predict request; the request body may hold this many "
        "times max_predict_bytes (256 MiB by default), refused with 413 while it streams in.",
    )
    predict_max_batch: int = Field(
        default=32, ge=1, le=1024, description="Most images one shared forward pass at /predict takes."
    )
    predict_max_wait_ms: float = Field(
        default=0.0,
        ge=0,
        le=1000,
        description="How long a forward pass at /predict waits for more requests to batch with; "
        "0 takes what is queued (on a CPU, requests queue up while a pass runs).",
    )
    checkpoint_seconds: float = Field(
        default=60.0,
        ge=0,
        description="How often a running job checkpoints (after any step; also when it is stopped "
        "and after its last epoch); 0 checkpoints after every epoch.",
    )
    predict_queue_size: int = Field(
        default=16,
        ge=1,
        le=1024,
        description="Most /predict requests in the API at once (reading, decoding, waiting for or in a "
        "forward pass); one more is answered 503 with Retry-After at once. They run in threads of their "
        "own, so the rest of the API stays responsive.",
    )
    predict_timeout_seconds: float = Field(
        default=60.0, gt=0, description="Longest a /predict request waits for its forward pass; then 503."
    )
    max_json_bytes: int = Field(
        default=1024**2,
        ge=1024,
        description="Largest request body on every route but the uploads (POST /datasets, /predict).",
    )
    predict_precision: Literal["float32", "bfloat16", "float16", "auto"] = Field(
        default="float32",
        description="What /predict computes in unless a request asks: float32 gives Caffe's "
        "probabilities; bfloat16 (or auto, where the hardware runs it natively) is faster.",
    )
    predictor_cache_size: int = Field(default=4, ge=1, description="Exports kept loaded for prediction.")
    metrics_flush_seconds: float = Field(
        default=1.0, gt=0, description="How often the worker writes buffered metrics."
    )
    cancel_poll_seconds: float = Field(
        default=0.5, gt=0, description="How often a running job looks for a cancel request."
    )
    lease_seconds: float = Field(
        default=60.0,
        gt=0,
        description="A running job's lease; another worker may take the job once it expires.",
    )
    reconcile_seconds: float = Field(
        default=30.0, gt=0, description="How often workers re-enqueue jobs the broker lost."
    )
    broker_visibility_timeout: int = Field(
        default=3600, ge=1, description="Redis: seconds before an unacknowledged task is redelivered."
    )
    feature_cache_bytes: int = Field(
        default=50 * 1024**3,
        ge=0,
        description="Feature caches beyond this many bytes are evicted, least recently used first "
        "(never one a job is computing); a dataset's go when it is deleted.",
    )
    max_attempts: int = Field(
        default=3,
        ge=1,
        description="Starts a job gets before it ends `failed`: a job whose worker dies every time "
        "(killed, out of memory) is not re-enqueued forever.",
    )
    metrics_public: bool = Field(
        default=False,
        description="Serve GET /metrics without a token (for a Prometheus inside your network); "
        "otherwise it needs one whenever tokens are configured.",
    )
    host: str = Field(
        default="127.0.0.1",
        description="Where `finetune api` and `finetune up` listen; another address needs a token first.",
    )
    port: int = Field(default=8000, ge=1, le=65535, description="The port they listen on.")
    auth: AuthMode = Field(
        default=AuthMode.AUTO,
        description="auto: a token is needed once any token was ever created or configured, and "
        "always from beyond this machine; required: always; off: never, and only this machine is "
        "answered (refused with a non-loopback FINETUNE_HOST).",
    )
    api_tokens: list[str] = Field(
        default_factory=list,
        description="Static bearer tokens (JSON list), the operator's: they see every owner's jobs at "
        "/metrics. Users' tokens come from `finetune token create NAME`.",
    )

    @model_validator(mode="after")
    def _embedded_defaults(self) -> Settings:
        if self.auth == AuthMode.OFF and not is_loopback(self.host):
            raise ValueError(
                f"FINETUNE_AUTH=off answers this machine only, but FINETUNE_HOST is {self.host}: "
                "set FINETUNE_AUTH to auto or required, or listen on 127.0.0.1"
            )
        self.data_dir = self.data_dir.expanduser().absolute()
        if not self.database_url:
            self.database_url = f"sqlite:///{self.data_dir / 'finetune.db'}"
        if not self.broker_url:
            self.broker_url = "filesystem://"
        if self.weights_path is None:
            self.weights_path = self.data_dir / WEIGHTS_FILE_NAME
        return self

    @property
    def uses_filesystem_broker(self) -> bool:
        return self.broker_url.startswith("filesystem://")

    @property
    def broker_dir(self) -> Path:
        return self.data_dir / "broker"


@lru_cache
def get_settings() -> Settings:
    return Settings()
