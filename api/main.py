"""The FastAPI app (`uvicorn api.main:app`). No TensorFlow is imported until /predict needs it."""

from __future__ import annotations

import logging

from fastapi import FastAPI

from api.errors import install_error_handlers
from api.limits import BodySizeLimit
from api.metrics import RequestMetrics
from api.predict_gate import PredictGate
from api.predictors import PredictorCache
from api.routes import (
    dataset_images,
    datasets,
    downloads,
    health,
    job_files,
    job_predictions,
    jobs,
    metrics,
    predict,
    sweeps,
)
from api.routes.ui import install_ui
from api.schemas.common import error_responses
from core.config import get_settings
from core.storage import Storage
from model.network.compile_cache import enable_compile_cache

DESCRIPTION = """Finetune AlexNet on your own labelled images and serve the result.

Upload a dataset (`POST /datasets`), launch a finetune (`POST /jobs`), follow it (`GET /jobs/{id}`,
`/metrics`, `/events`), and classify images (`POST /predict`). Every error has the shape
`{"error": <name>, "detail": <what is wrong>}`."""


def create_app() -> FastAPI:
    settings = get_settings()
    logging.basicConfig(level=logging.INFO)
    app = FastAPI(
        title="finetune",
        version="0.1.0",
        description=DESCRIPTION,
        responses=error_responses(400, 401, 422, 503),
        docs_url=None,  # served by api.routes.ui with local assets: the docs work offline
        redoc_url=None,
    )
    enable_compile_cache(Storage(settings).compile_cache_dir)  # before the first prediction compiles
    app.state.predictors = PredictorCache(  # exports load lazily, once each; their batcher stops with them
        settings.predictor_cache_size, on_evict=lambda predictor: predictor.forward.close()
    )
    app.state.predict_gate = PredictGate(settings.predict_queue_size)
    install_error_handlers(app)
    for router in (
        *(datasets.router, dataset_images.router, jobs.router, job_files.router, job_predictions.router),
        *(sweeps.router, predict.router, downloads.router, health.router, metrics.router),
    ):
        app.include_router(router)
    install_ui(app)  # after the API: its catch-all /ui/{page} must not shadow anything
    app.add_middleware(RequestMetrics)
    multipart_overhead = 64 * 1024
    app.add_middleware(
        BodySizeLimit,
        default=settings.max_json_bytes,
        limits={
            ("POST", "/datasets"): settings.max_upload_bytes + multipart_overhead,
            ("POST", "/predict"): settings.max_predict_bytes * settings.max_predict_images
            + multipart_overhead,
        },
    )
    return app


app = create_app()
