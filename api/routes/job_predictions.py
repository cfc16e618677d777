"""The best epoch's per-image predictions of a job: what it gets wrong, and how sure it is."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query

from api.deps import OffsetQuery, OwnerDep, SessionDep, StorageDep
from api.schemas.common import error_responses
from api.schemas.jobs import ImagePredictionsPublic
from core.browse import job_predictions
from core.datasets import get_dataset
from core.jobs import get_job

router = APIRouter(prefix="/jobs", tags=["jobs"])
ERRORS = error_responses(404, 422)


@router.get("/{job_id}/predictions", response_model=ImagePredictionsPublic, responses=ERRORS)
def list_predictions(
    job_id: str,
    session: SessionDep,
    storage: StorageDep,
    owner: OwnerDep,
    split: Annotated[Literal["val", "test"], Query()] = "val",
    wrong_only: bool = False,
    offset: OffsetQuery = 0,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
):
    """Validation predictions of the best epoch so far (test ones once the job has ended)."""
    job = get_job(session, job_id, owner)
    classes = get_dataset(session, job.dataset_id, owner).classes if job.dataset_id else []
    dataset_id = job.dataset_id
    session.close()
    rows, count = job_predictions(storage, job_id, classes, split, wrong_only, offset, limit)
    return ImagePredictionsPublic(dataset_id=dataset_id, data=rows, count=count)
