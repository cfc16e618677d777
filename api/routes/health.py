from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from sqlalchemy import text

from api.deps import SettingsDep
from api.schemas.health import Health
from core.db import get_engine
from core.queue import get_celery
from core.weights import installed_weights

router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=Health)
def healthz() -> Health:
    """The process is alive."""
    return Health(status="ok")


@router.get("/readyz", response_model=Health, responses={503: {"model": Health}})
def readyz(settings: SettingsDep):
    """The database and the broker are reachable; 503 names the one that is not. `weights` says
    whether the pretrained weights are `ok`, `missing` or `invalid: <reason>` (not a reason for 503)."""
    checks = {}
    try:
        with get_engine().connect() as connection:
            connection.execute(text("SELECT 1"))
        checks["database"] = "ok"
    except Exception as exc:  # noqa: BLE001
        checks["database"] = f"unreachable ({exc.__class__.__name__})"
    try:
        with get_celery().connection_for_write() as connection:
            connection.ensure_connection(max_retries=1, timeout=2)
        checks["broker"] = "ok"
    except Exception as exc:  # noqa: BLE001
        checks["broker"] = f"unreachable ({exc.__class__.__name__})"
    healthy = all(v == "ok" for v in checks.values())
    # reported, not required: jobs with weights 'random' and finetuned models need no weights file
    checks["weights"] = installed_weights(settings).describe()
    body = Health(status="ok" if healthy else "unavailable", checks=checks)
    return body if healthy else JSONResponse(body.model_dump(), status_code=503)
