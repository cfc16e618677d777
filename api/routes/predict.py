from __future__ import annotations

import time
from functools import partial
from pathlib import Path
from typing import Annotated, Literal

from fastapi import APIRouter, File, Form, Request, UploadFile

from api.batching import MicroBatcher
from api.deps import OwnerDep, SessionDep, SettingsDep, StorageDep
from api.metrics import BATCH_IMAGES, PREDICT_SECONDS, PREDICTIONS
from api.schemas.common import error_responses
from api.schemas.predict import PredictionsPublic
from core import jobs as job_service
from core.errors import InvalidImage, InvalidRequest, JobStateConflict, PayloadTooLarge, TooManyImages
from core.states import JobStatus
from core.weights import require_weights
from model.network.precision import resolve

router = APIRouter(tags=["predict"])
ERRORS = error_responses(400, 404, 409, 413, 415, 422, 503)


@router.post("/predict", response_model=PredictionsPublic, responses=ERRORS)
async def predict(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    storage: StorageDep,
    owner: OwnerDep,
    image: Annotated[
        list[UploadFile],
        File(min_length=1, description="One or more images (JPEG, PNG, BMP, GIF, WebP, TIFF)"),
    ],
    job_id: Annotated[str | None, Form(max_length=64, description="A succeeded job")] = None,
    model: Annotated[
        str | None, Form(max_length=64, description="`imagenet`: the pretrained 1000-class network")
    ] = None,
    top_k: Annotated[int, Form(ge=1, le=1000)] = 5,
    precision: Annotated[
        Literal["float32", "bfloat16", "float16", "auto"] | None,
        Form(description="What the network computes in; default FINETUNE_PREDICT_PRECISION (float32)"),
    ] = None,
):
    """Classify images with a finetuned job's export or the pretrained network; top-k per image."""
    if (job_id is None) == (model is None):
        raise InvalidRequest("give exactly one of job_id (a succeeded job) or model=imagenet")
    if model is not None and model != "imagenet":
        raise InvalidRequest(f"model must be 'imagenet'; got {model!r} (use job_id for a finetuned model)")
    if len(image) > settings.max_predict_images:
        raise TooManyImages(f"at most {settings.max_predict_images} images per request; got {len(image)}")
    gate = request.app.state.predict_gate
    with gate.admit():  # 503 at once when FINETUNE_PREDICT_QUEUE_SIZE requests are inside
        payloads = []
        for position, upload in enumerate(image, start=1):
            data = await upload.read(settings.max_predict_bytes + 1)
            if len(data) > settings.max_predict_bytes:
                raise PayloadTooLarge(f"image {position} is larger than {settings.max_predict_bytes} bytes")
            payloads.append(data)
        started = time.perf_counter()
        key = "imagenet" if job_id is None else f"job:{job_id}"
        locate = partial(_model_folder, session, storage, settings, owner, job_id)
        # one trip to a thread for the lookup, the model and the precision (TensorFlow is imported and
        # the hardware probed there, never on the event loop): each trip costs the event loop
        precision, predictions = await gate.run(
            _predict, request.app.state.predictors, locate, payloads, top_k, settings, precision
        )
    kind = "imagenet" if key == "imagenet" else "job"
    PREDICTIONS.labels(kind).inc(len(predictions))
    PREDICT_SECONDS.labels(kind).observe(time.perf_counter() - started)
    return PredictionsPublic(model=key, precision=precision, predictions=predictions)


def _model_folder(session, storage, settings, owner: str | None, job_id: str | None) -> tuple[Path, str]:
    """What a request names, and the key its loaded model is cached under: a succeeded job's export
    (its status read, not its whole row), or the pretrained weights as installed now (a reinstalled
    file is another model). The session is closed before the (possibly slow) model work."""
    try:
        if job_id is None:
            weights = require_weights(settings, use="model 'imagenet'")
            return settings.weights_path, f"imagenet:{weights.fingerprint or weights.identity}"
        status = job_service.job_status(session, job_id, owner)
        export = storage.export_dir(job_id)
        if status != JobStatus.SUCCEEDED or not export.is_dir():
            raise JobStateConflict(f"job {job_id} is {status}; prediction needs a succeeded job")
        return export, f"job:{job_id}"
    finally:
        session.close()


def _predict(cache, locate, payloads: list[bytes], top_k: int, settings, precision: str | None):
    from model.data.preprocess import ImageError
    from model.exports.export import imagenet_predictor, load_export

    precision = resolve(precision or settings.predict_precision)
    folder, key = locate()

    def load():
        predictor = (imagenet_predictor if key.startswith("imagenet") else load_export)(folder, precision)
        # concurrent requests for this model share forward passes (api/batching.py)
        predictor.forward = MicroBatcher(
            predictor.forward,
            settings.predict_max_batch,
            settings.predict_max_wait_ms / 1000,
            on_batch=BATCH_IMAGES.observe,
            timeout=settings.predict_timeout_seconds,
        )
        return predictor

    predictor = cache.get(f"{key}@{precision}", load)
    try:
        return precision, predictor.predict(payloads, top_k=top_k, max_pixels=settings.max_image_pixels)
    except ImageError as exc:
        raise InvalidImage(str(exc)) from None
