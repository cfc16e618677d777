from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, status

from api.deps import OffsetQuery, OwnerDep, SessionDep, SettingsDep, StorageDep
from api.schemas.common import error_responses
from api.schemas.jobs import JobCreate
from api.schemas.sweeps import SweepCreate, SweepPublic, SweepsPublic
from core import sweeps as service
from core.queue import enqueue_training

router = APIRouter(prefix="/sweeps", tags=["sweeps"])
ERRORS = error_responses(404, 409, 422)


def public(session, sweep, trials=None) -> SweepPublic:
    trials = service.trials_of(session, sweep.id) if trials is None else trials
    return SweepPublic.from_rows(
        sweep, trials, service.sweep_status(sweep, trials), service.best_trial(trials)
    )


@router.post("", status_code=status.HTTP_202_ACCEPTED, response_model=SweepPublic, responses=ERRORS)
def create_sweep(body: SweepCreate, session: SessionDep, settings: SettingsDep, owner: OwnerDep):
    """Launch every trial as a job. 422 names the trial and field that cannot run (or a grid over
    64 trials); 409 as for `POST /jobs`. Trials share the frozen-layer features: computed once."""

    def validate(options: dict):
        return JobCreate.model_validate({**options, "dataset_id": body.dataset_id}).train_spec()

    sweep, trials = service.create_sweep(
        session, settings, owner, body.dataset_id, body.base, body.grid, body.random, validate
    )
    session.commit()
    for trial in trials:
        enqueue_training(trial.id)
    return public(session, sweep)


@router.get("", response_model=SweepsPublic)
def list_sweeps(
    session: SessionDep,
    owner: OwnerDep,
    offset: OffsetQuery = 0,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
):
    """Newest first."""
    rows, count = service.list_sweeps(session, owner, offset, limit)
    trials = service.trials_by_sweep(session, [row.id for row in rows])
    return SweepsPublic(data=[public(session, row, trials[row.id]) for row in rows], count=count)


@router.get("/{sweep_id}", response_model=SweepPublic, responses=ERRORS)
def get_sweep(sweep_id: str, session: SessionDep, owner: OwnerDep):
    return public(session, service.get_sweep(session, sweep_id, owner))


@router.post("/{sweep_id}/cancel", response_model=SweepPublic, responses=ERRORS)
def cancel_sweep(sweep_id: str, session: SessionDep, owner: OwnerDep):
    """Cancel every queued or running trial; 409 when none is left to cancel."""
    sweep = service.cancel_sweep(session, sweep_id, owner)
    session.commit()
    return public(session, sweep)


@router.delete("/{sweep_id}", status_code=status.HTTP_204_NO_CONTENT, responses=ERRORS)
def delete_sweep(sweep_id: str, session: SessionDep, storage: StorageDep, owner: OwnerDep):
    """Delete the sweep and its trials with their files; 409 while a trial runs (cancel it first)."""
    service.delete_sweep(session, storage, sweep_id, owner)
    session.commit()
