"""The FastAPI app (`uvicorn api.main:app`). No TensorFlow is imported until /predict needs it."""

from __future__ import annotations

import logging
from contextlib import asynccontextmanager

from fastapi import FastAPI

from api.errors import install_error_handlers
from api.limits import BodySizeLimit
from api.predictors import PredictorCache
from api.routes import datasets, health, jobs, predict
from core.config import get_settings

DESCRIPTION = """Finetune AlexNet on your own labelled images and serve the result.

Upload a dataset (`POST /datasets`), launch a finetune (`POST /jobs`), follow it (`GET /jobs/{id}`,
`/metrics`, `/events`), and classify images (`POST /predict`). Every error has the shape
`{"error": <name>, "detail": <what is wrong>}`."""


@asynccontextmanager
async def lifespan(app: FastAPI):
    app.state.predictors = PredictorCache(get_settings().predictor_cache_size)
    yield


def create_app() -> FastAPI:
    settings = get_settings()
    logging.basicConfig(level=logging.INFO)
    app = FastAPI(title="finetune", version="0.1.0", description=DESCRIPTION, lifespan=lifespan)
    install_error_handlers(app)
    for router in (datasets.router, jobs.router, predict.router, health.router):
        app.include_router(router)
    multipart_overhead = 64 * 1024
    app.add_middleware(BodySizeLimit, limits={
        ("POST", "/datasets"): settings.max_upload_bytes + multipart_overhead,
        ("POST", "/predict"): settings.max_predict_bytes * settings.max_predict_images + multipart_overhead,
    })
    return app


app = create_app()
