"""Rows belong to the owner of the token that created them; to anyone else they do not exist."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.errors import NotFound
from core.states import DELETING


def owned_by(table, owner: str | None):
    """The SQL condition for `owner`'s rows (rows made without a token have no owner); a row being
    deleted is gone for everyone."""
    mine = table.owner.is_(None) if owner is None else table.owner == owner
    return (mine & (table.status != DELETING)) if hasattr(table, "status") else mine


def get_owned(
    session: Session,
    table,
    row_id: str,
    owner: str | None,
    not_found: type[NotFound],
    noun: str,
    for_update: bool = False,
):
    """The owner's row; `for_update` locks it until the transaction ends (PostgreSQL), so a check
    and the write that depends on it cannot interleave with another writer's."""
    row = session.get(table, row_id, with_for_update=for_update, populate_existing=for_update)
    if row is None or row.owner != owner or getattr(row, "status", None) == DELETING:
        raise not_found(f"no {noun} with id {row_id}")
    return row


def owned_column(
    session: Session, column, row_id: str, owner: str | None, not_found: type[NotFound], noun: str
):
    """One column of an owned row, as `get_owned` finds it, without loading the row: for the hot
    path of /predict, which needs only the job's status."""
    table = column.class_
    found = session.execute(select(column).where(table.id == row_id, owned_by(table, owner))).first()
    if found is None:
        raise not_found(f"no {noun} with id {row_id}")
    return found[0]


def owned_page(
    session: Session, table, owner: str | None, offset: int, limit: int, *filters, order_by
) -> tuple[list, int]:
    """One page of the owner's rows, and how many there are in all."""
    query = select(table).where(owned_by(table, owner), *filters)
    count = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = session.scalars(query.order_by(*order_by).offset(offset).limit(limit)).all()
    return list(rows), count
