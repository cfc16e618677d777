"""A lease on a job row: whoever holds a live one runs the job; a second delivery does nothing."""

from __future__ import annotations

import os
import socket
import time
import uuid

from sqlalchemy import or_, update
from sqlalchemy.orm import Session, sessionmaker

from core.tables import JobRow

WORKER_ID = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class JobLease:
    def __init__(self, job_id: str, sessions: sessionmaker[Session], ttl_seconds: float):
        self.job_id, self.sessions, self.ttl = job_id, sessions, ttl_seconds

    def acquire(self) -> bool:
        """Take the job if it is queued or running under an expired lease, in one atomic update."""
        now = time.time()
        with self.sessions() as session, session.begin():
            taken = session.execute(
                update(JobRow)
                .where(
                    JobRow.id == self.job_id,
                    JobRow.status.in_(("queued", "running")),
                    or_(
                        JobRow.lease_expires.is_(None),
                        JobRow.lease_expires < now,
                        JobRow.lease_owner == WORKER_ID,
                    ),
                )
                .values(status="running", lease_owner=WORKER_ID, lease_expires=now + self.ttl)
            ).rowcount
        return taken == 1

    def renew(self, session: Session) -> bool:
        """Extend the lease; False when it was lost (expired and taken by another worker)."""
        return (
            session.execute(
                update(JobRow)
                .where(JobRow.id == self.job_id, JobRow.lease_owner == WORKER_ID)
                .values(lease_expires=time.time() + self.ttl)
            ).rowcount
            == 1
        )

    def release(self, session: Session) -> None:
        session.execute(
            update(JobRow)
            .where(JobRow.id == self.job_id, JobRow.lease_owner == WORKER_ID)
            .values(lease_owner=None, lease_expires=None)
        )
