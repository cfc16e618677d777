"""download_links: short-lived, single-use links to a job's files, for browsers

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-08 01:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "download_links",
        sa.Column("secret_hash", sa.String(64), nullable=False),
        sa.Column("job_id", sa.String(32), nullable=False),
        sa.Column("file", sa.String(16), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["job_id"], ["jobs.id"], name="fk_download_links_job_id_jobs", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("secret_hash", name="pk_download_links"),
    )
    op.create_index("ix_download_links_job_id", "download_links", ["job_id"])


def downgrade() -> None:
    op.drop_index("ix_download_links_job_id", table_name="download_links")
    op.drop_table("download_links")
