"""Leases on rows: whoever holds a live one does the work (a job's training, a dataset's
preparation); a second delivery of the same message does nothing.

Every change is a conditional update (`WHERE lease_owner = :me`), and lease times come from the
database's clock, so hosts whose clocks disagree still agree on who holds a row.
"""

from __future__ import annotations

import os
import socket
import threading
import uuid
from functools import lru_cache

from sqlalchemy import or_
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from core.db import database_now
from core.states import HELD_STATUS, DatasetStatus, JobStatus, transition
from core.tables import DatasetRow, JobRow


@lru_cache
def _worker_id(pid: int) -> str:
    return f"{socket.gethostname()}:{pid}:{uuid.uuid4().hex[:8]}"


def worker_id() -> str:
    """This process's id (a forked child gets its own)."""
    return _worker_id(os.getpid())


class RowLease:
    """A lease on one row of `table` (which has `status`, `lease_owner` and `lease_expires`).

    The row is held only in its table's held state (a job `running`, a dataset `preparing`):
    once a cancel or a delete moves it on, renewals and final writes find nothing to change."""

    def __init__(
        self,
        table,
        row_id: str,
        sessions: sessionmaker[Session],
        ttl_seconds: float,
        claimable: tuple[str, ...],
    ):
        self.table, self.row_id, self.sessions, self.ttl = table, row_id, sessions, ttl_seconds
        self.claimable, self.held = claimable, HELD_STATUS[table.__tablename__]

    def acquire(self) -> bool:
        """Take the row if it is claimable and its lease is free or expired, in one atomic update."""
        table = self.table
        with self.sessions() as session, session.begin():
            now = database_now(session)
            free = or_(
                table.lease_expires.is_(None), table.lease_expires < now, table.lease_owner == worker_id()
            )
            return transition(
                session,
                table,
                self.row_id,
                self.claimable,
                self.held,
                free,
                lease_owner=worker_id(),
                lease_expires=now + self.ttl,
            )

    def renew(self, session: Session) -> bool:
        """Extend the lease; False when it was lost (expired and taken, cancelled, deleted)."""
        return self.write_final(session, {"lease_expires": database_now(session) + self.ttl}, release=False)

    def write_final(self, session: Session, values: dict, release: bool = True) -> bool:
        """Write `values` (a `status` among them moves the row) and give the lease up, only while
        this worker holds the lease and the row is still in its held state."""
        values = dict(values)
        to_state = values.pop("status", None)
        if release:
            values.update(lease_owner=None, lease_expires=None)
        return transition(
            session, self.table, self.row_id, (self.held,), to_state, holder=worker_id(), **values
        )

    def release(self, session: Session) -> None:
        self.write_final(session, {})


def JobLease(job_id: str, sessions: sessionmaker[Session], ttl_seconds: float) -> RowLease:  # noqa: N802
    """A queued job, or a running one whose worker's lease expired, becomes `running` here."""
    return RowLease(JobRow, job_id, sessions, ttl_seconds, claimable=(JobStatus.QUEUED, JobStatus.RUNNING))


def PreparationLease(dataset_id: str, sessions: sessionmaker[Session], ttl_seconds: float) -> RowLease:  # noqa: N802
    """One preparer per dataset, even with several prepare workers."""
    return RowLease(DatasetRow, dataset_id, sessions, ttl_seconds, claimable=(DatasetStatus.PREPARING,))


def gave_up(attempts: int, max_attempts: int, then: str) -> str | None:
    """Why a row whose worker stopped during each of its `attempts` earlier starts is not started
    again, or None while it may be: the one attempt limit of jobs and preparations alike."""
    if attempts < max_attempts:
        return None
    tries = f"{attempts} attempt{'' if attempts == 1 else 's'}"
    return f"gave up after {tries}: its worker stopped during each one (killed, or out of memory?); {then}"


class LeaseKeeper(threading.Thread):
    """Renews a lease in the background while long work runs outside any transaction."""

    def __init__(self, lease: RowLease, interval: float):
        super().__init__(name=f"lease-{lease.row_id[:8]}", daemon=True)
        self.lease, self.interval = lease, interval
        self.lost = threading.Event()
        self._stop = threading.Event()

    def run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                with self.lease.sessions() as session, session.begin():
                    if not self.lease.renew(session):
                        self.lost.set()
                        return
            except SQLAlchemyError:
                pass  # the database is away: try again next time (the lease may expire meanwhile)

    def stop(self) -> None:
        self._stop.set()
