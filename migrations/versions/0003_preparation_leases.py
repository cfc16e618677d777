"""datasets get a preparation lease and an attempt count

One preparer per dataset even with several prepare workers, and a preparation that kills its
worker every time ends `failed` after FINETUNE_MAX_ATTEMPTS instead of being sent forever.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26 06:15:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("datasets") as batch:
        batch.add_column(sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("lease_owner", sa.String(length=255), nullable=True))
        batch.add_column(sa.Column("lease_expires", sa.Float(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("datasets") as batch:
        batch.drop_column("lease_expires")
        batch.drop_column("lease_owner")
        batch.drop_column("attempts")
