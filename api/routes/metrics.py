"""GET /metrics in Prometheus' text format."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from api.deps import SessionDep, SettingsDep, get_owner
from api.schemas import error_responses

router = APIRouter(tags=["operations"])


@router.get(
    "/metrics",
    response_class=Response,
    responses={200: {"content": {"text/plain": {}}}, **error_responses(401)},
)
def metrics(request: Request, session: SessionDep, settings: SettingsDep) -> Response:
    """Requests, predictions, jobs by status, queue lengths, training speed, feature-cache use.

    Needs a token whenever tokens are configured, unless FINETUNE_METRICS_PUBLIC is set."""
    if not settings.metrics_public:
        get_owner(request, session, settings)  # 401 without a valid token
    session.close()
    return Response(generate_latest(request.app.state.metrics_registry), media_type=CONTENT_TYPE_LATEST)
