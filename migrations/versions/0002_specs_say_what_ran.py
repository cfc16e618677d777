"""job specs say what ran: optimizer and momentum as they applied

Before this, `optimizer: sgd` ran plain SGD whatever `momentum` said, `momentum` was the
optimizer name for SGD with momentum, and adam rows carried an unused `momentum: 0.9`.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26 06:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

jobs = sa.table("jobs", sa.column("id", sa.String), sa.column("spec", sa.JSON))


def what_ran(spec: dict) -> dict:
    optimizer = spec.get("optimizer")
    if optimizer == "momentum":
        return {**spec, "optimizer": "sgd", "momentum": spec.get("momentum", 0.9)}
    if optimizer == "sgd":
        return {**spec, "momentum": 0.0}
    if optimizer == "adam":
        return {**spec, "momentum": None}
    return spec


def upgrade() -> None:
    connection = op.get_bind()
    for job_id, spec in connection.execute(sa.select(jobs.c.id, jobs.c.spec)).all():
        fixed = what_ran(dict(spec or {}))
        if fixed != spec:
            connection.execute(sa.update(jobs).where(jobs.c.id == job_id).values(spec=fixed))


def downgrade() -> None:
    """Nothing to undo: the rewritten specs describe the same runs."""
