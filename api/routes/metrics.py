"""GET /metrics in Prometheus' text format."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from api.deps import SessionDep, SettingsDep, get_owner
from api.metrics import make_registry
from api.schemas.common import error_responses
from core.auth import sees_everything

router = APIRouter(tags=["operations"])


@router.get(
    "/metrics",
    response_class=Response,
    responses={200: {"content": {"text/plain": {}}}, **error_responses(401)},
)
def metrics(request: Request, session: SessionDep, settings: SettingsDep) -> Response:
    """Requests, predictions, jobs by status, queue lengths, training speed, feature-cache use.

    Needs a token whenever the service asks for one, unless FINETUNE_METRICS_PUBLIC is set. A user's
    token (`finetune token create`) sees its own jobs; the operator's (FINETUNE_API_TOKENS), a public
    scrape and a caller on a service without tokens see every job."""
    owner = None if settings.metrics_public else get_owner(request, session, settings)
    session.close()
    registry = make_registry(None if sees_everything(owner) else owner)
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
