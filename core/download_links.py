"""Short-lived, single-use links to a job's files, so a browser saves them straight from the server.

A plain link cannot carry a token, so the token is checked when the link is made; the link's secret
is then its only credential: random, stored hashed, good for one download within `LINK_SECONDS`.
"""

from __future__ import annotations

import secrets
from datetime import timedelta

from sqlalchemy import delete
from sqlalchemy.orm import Session

from core.auth import hash_token
from core.errors import DownloadLinkNotFound
from core.tables import DownloadLinkRow, utcnow

LINK_SECONDS = 60


def create_link(session: Session, job_id: str, file: str) -> str:
    """A new link's secret for `file` (savedmodel, onnx, tflite or tensorboard) of a job the caller
    may read; links that expired unused go at the same time."""
    session.execute(delete(DownloadLinkRow).where(DownloadLinkRow.expires_at < utcnow()))
    secret = secrets.token_urlsafe(32)
    expires = utcnow() + timedelta(seconds=LINK_SECONDS)
    session.add(DownloadLinkRow(secret_hash=hash_token(secret), job_id=job_id, file=file, expires_at=expires))
    return secret


def redeem_link(session: Session, secret: str) -> tuple[str, str]:
    """(job id, file) of an unexpired link, used up by this call: a second download needs a new link."""
    used = session.execute(
        delete(DownloadLinkRow)
        .where(DownloadLinkRow.secret_hash == hash_token(secret), DownloadLinkRow.expires_at >= utcnow())
        .returning(DownloadLinkRow.job_id, DownloadLinkRow.file)
    ).first()
    if used is None:
        raise DownloadLinkNotFound("this download link is unknown, used or expired: ask for a new one")
    return used.job_id, used.file
