"""jobs.name, jobs.note, datasets.note; jobs.classes keeps the dataset's class names

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-08 01:45:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("jobs") as table:
        table.add_column(sa.Column("name", sa.String(255), nullable=True))
        table.add_column(sa.Column("note", sa.Text(), nullable=True))
        table.add_column(sa.Column("classes", sa.JSON(), nullable=True))
    with op.batch_alter_table("datasets") as table:
        table.add_column(sa.Column("note", sa.Text(), nullable=True))
    # jobs made before keep their dataset's names too, while the dataset is there to read them from
    op.execute(
        "UPDATE jobs SET classes = "
        "(SELECT datasets.classes FROM datasets WHERE datasets.id = jobs.dataset_id)"
    )


def downgrade() -> None:
    with op.batch_alter_table("datasets") as table:
        table.drop_column("note")
    with op.batch_alter_table("jobs") as table:
        table.drop_column("classes")
        table.drop_column("note")
        table.drop_column("name")
