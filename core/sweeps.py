"""Sweep service: a sweep is a set of ordinary jobs (trials) created together in one transaction.

The trials' rows are the truth about progress: a sweep's status and best trial are computed from
them on every read, so nothing about a sweep can drift from its jobs.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from core import jobs
from core.config import Settings
from core.datasets import get_dataset
from core.errors import InvalidRequest, JobStateConflict, SweepNotFound
from core.ownership import get_owned, owned_page
from core.states import JOB_ACTIVE, JobStatus, SweepStatus
from core.storage import Storage
from core.tables import JobRow, SweepRow
from model.training.spec import TrainSpec
from model.training.sweep_space import RandomSearch, SweepError, grid_trials, random_trials, trial_specs


def create_sweep(
    session: Session,
    settings: Settings,
    owner: str | None,
    dataset_id: str,
    base: dict[str, Any],
    grid: dict[str, list] | None,
    random: RandomSearch | None,
    validate: Callable[[dict], TrainSpec] = TrainSpec.model_validate,
) -> tuple[SweepRow, list[JobRow]]:
    """Write the sweep and its trials as queued jobs; the caller commits, then enqueues each trial."""
    get_dataset(session, dataset_id, owner)  # 404 before anything is written
    try:
        params = grid_trials(grid) if grid is not None else random_trials(random)
        specs = trial_specs(base, params, validate)
    except SweepError as exc:
        raise InvalidRequest(str(exc)) from None
    request = {"base": base, "grid": grid, "random": random.model_dump(by_alias=True) if random else None}
    sweep = SweepRow(owner=owner, dataset_id=dataset_id, request=request)
    session.add(sweep)
    session.flush()
    trials = []
    for trial_params, spec in zip(params, specs):
        row = jobs.create_job(session, settings, owner, dataset_id, spec)
        row.sweep_id, row.sweep_params = sweep.id, trial_params
        trials.append(row)
    session.flush()
    return sweep, trials


def get_sweep(session: Session, sweep_id: str, owner: str | None) -> SweepRow:
    return get_owned(session, SweepRow, sweep_id, owner, SweepNotFound, "sweep")


def trials_of(session: Session, sweep_id: str) -> list[JobRow]:
    return trials_by_sweep(session, [sweep_id])[sweep_id]


def trials_by_sweep(session: Session, sweep_ids: list[str]) -> dict[str, list[JobRow]]:
    """The trials of each sweep, in the order they were created: one query for a whole page."""
    trials: dict[str, list[JobRow]] = {sweep_id: [] for sweep_id in sweep_ids}
    query = (
        select(JobRow)
        .where(JobRow.sweep_id.in_(sweep_ids), JobRow.status != JobStatus.DELETING)
        .order_by(JobRow.created_at, JobRow.id)
    )
    for row in session.scalars(query):
        trials[row.sweep_id].append(row)
    return trials


def list_sweeps(session: Session, owner: str | None, offset: int, limit: int) -> tuple[list[SweepRow], int]:
    return owned_page(
        session, SweepRow, owner, offset, limit, order_by=(SweepRow.created_at.desc(), SweepRow.id)
    )


def sweep_status(sweep: SweepRow, trials: list[JobRow]) -> SweepStatus:
    """running while a trial is queued or running; then cancelled if asked, succeeded if at least
    one trial succeeded, else failed (or cancelled when every trial was cancelled one by one)."""
    statuses = [t.status for t in trials]
    if any(s in JOB_ACTIVE for s in statuses):
        return SweepStatus.RUNNING
    if sweep.cancel_requested:
        return SweepStatus.CANCELLED
    if JobStatus.SUCCEEDED in statuses:
        return SweepStatus.SUCCEEDED
    if statuses and all(s == JobStatus.CANCELLED for s in statuses):
        return SweepStatus.CANCELLED
    return SweepStatus.FAILED


def best_trial(trials: list[JobRow]) -> JobRow | None:
    """The succeeded trial with the highest validation accuracy; a tie goes to the lower loss."""
    done = [t for t in trials if t.status == JobStatus.SUCCEEDED and t.best_val_accuracy is not None]
    return max(done, key=lambda t: (t.best_val_accuracy, -(t.best_val_loss or 0.0)), default=None)


def cancel_sweep(session: Session, sweep_id: str, owner: str | None) -> SweepRow:
    """Cancel every trial still queued or running (each as `POST /jobs/{id}/cancel` would)."""
    sweep = get_sweep(session, sweep_id, owner)
    trials = trials_of(session, sweep_id)
    active = [t for t in trials if t.status in JOB_ACTIVE]
    if not active:
        status = sweep_status(sweep, trials)
        raise JobStateConflict(f"sweep {sweep_id} is {status}; only a running sweep can be cancelled")
    sweep.cancel_requested = True
    for trial in active:
        try:
            jobs.cancel_job(session, trial.id, owner)
        except JobStateConflict:
            pass  # it finished in the meantime
    return sweep


def delete_sweep(session: Session, storage: Storage, sweep_id: str, owner: str | None) -> None:
    """Delete the sweep and every trial with its files; 409 while a trial runs (cancel first).

    All or nothing: every trial is marked `deleting` and the sweep row removed in one transaction
    (none if a trial runs), committed; then each trial's files and row go (a crash: the reconciler).
    """
    get_sweep(session, sweep_id, owner)
    trials = JobRow.sweep_id == sweep_id
    trial_ids = session.scalars(
        update(JobRow)
        .where(trials, JobRow.status != JobStatus.RUNNING)
        .values(status=JobStatus.DELETING)
        .returning(JobRow.id)
        .execution_options(synchronize_session=False)
    ).all()
    # what the update left is running (or finished a moment ago: the caller may try again)
    running = session.scalar(select(func.count()).where(trials, JobRow.status != JobStatus.DELETING))
    if running:
        session.rollback()
        raise JobStateConflict(
            f"sweep {sweep_id} has {running} running trial(s); cancel the sweep first, then delete it"
        )
    session.execute(delete(SweepRow).where(SweepRow.id == sweep_id))
    session.commit()
    for trial_id in trial_ids:
        jobs.finish_job_deletion(session, storage, trial_id)
