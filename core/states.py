"""The states of jobs, datasets and sweeps, and the one function that moves a row between them.

Every writer (the API's services, the worker, the reconciler) changes a status through
`transition`: a conditional update on the row's current status and, where a worker holds it, on
its lease holder. A lost race is an answer (False), never an overwrite. A terminal state clears
the lease, so a holder that stalled (not died) can never write over it.
"""

from __future__ import annotations

from enum import StrEnum

from sqlalchemy import delete
from sqlalchemy.orm import Session

from core.db import conditional_update

DELETING = "deleting"  # marked and committed; its files go next, then the row (after a crash: the reconciler)


class JobStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"
    DELETING = DELETING


class DatasetStatus(StrEnum):
    PREPARING = "preparing"
    READY = "ready"
    FAILED = "failed"
    DELETING = DELETING


class SweepStatus(StrEnum):
    """Computed from the trials on every read (`core.sweeps.sweep_status`); never stored."""

    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


JOB_ACTIVE = (JobStatus.QUEUED, JobStatus.RUNNING)
JOB_ENDED = (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED)
JOB_VISIBLE = (*JOB_ACTIVE, *JOB_ENDED)  # what clients see: a row being deleted is gone for them
DATASET_VISIBLE = (DatasetStatus.PREPARING, DatasetStatus.READY, DatasetStatus.FAILED)

# A worker holds a row only in this state: its renewals and final writes need the row still there.
HELD_STATUS = {"jobs": JobStatus.RUNNING, "datasets": DatasetStatus.PREPARING}
ENDED = {
    "jobs": (*JOB_ENDED, JobStatus.DELETING),
    "datasets": (DatasetStatus.READY, DatasetStatus.FAILED, DatasetStatus.DELETING),
}

ANY_HOLDER = object()


def transition(
    session: Session,
    table,
    row_id: str,
    from_states: tuple[str, ...],
    to_state: str | None = None,
    *conditions,
    holder: str | None | object = ANY_HOLDER,
    **values,
) -> bool:
    """Move one row from any of `from_states` to `to_state` (None keeps its status: a write by the
    holder while it stays put), only while `conditions` hold and, unless `ANY_HOLDER`, only while
    `holder` (a worker id, or None for "nobody") holds its lease. True when the row changed."""
    where = [table.status.in_(from_states), *conditions]
    if holder is not ANY_HOLDER:
        where.append(table.lease_owner.is_(None) if holder is None else table.lease_owner == holder)
    if to_state is not None:
        values["status"] = to_state
        if to_state in ENDED[table.__tablename__]:
            values.update(lease_owner=None, lease_expires=None)
    return conditional_update(session, table, row_id, *where, **values)


def forget_marked(session: Session, table, row_id: str) -> None:
    """The last step of a delete, once the row's files are gone: the row, if still marked (committed)."""
    session.execute(
        delete(table)
        .where(table.id == row_id, table.status == DELETING)
        .execution_options(synchronize_session=False)
    )
    session.commit()
