"""The tables. The job row is the truth about a job; broker messages only point at it."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    return datetime.now(UTC)


def new_id() -> str:
    return uuid.uuid4().hex


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {dict[str, Any]: JSON, list[Any]: JSON, datetime: DateTime(timezone=True)}


class DatasetRow(Base):
    __tablename__ = "datasets"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    owner: Mapped[str | None] = mapped_column(String(64), index=True)
    name: Mapped[str] = mapped_column(String(255))
    note: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16))  # preparing | ready | failed
    classes: Mapped[list[Any]] = mapped_column(default=list)
    num_images: Mapped[int] = mapped_column(Integer, default=0)
    splits: Mapped[dict[str, Any]] = mapped_column(default=dict)
    rejected: Mapped[list[Any]] = mapped_column(default=list)
    val_fraction: Mapped[float] = mapped_column(Float)
    test_fraction: Mapped[float] = mapped_column(Float)
    seed: Mapped[int] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    lease_owner: Mapped[str | None] = mapped_column(String(255))
    lease_expires: Mapped[float | None] = mapped_column(Float)  # database clock, unix seconds
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    ready_at: Mapped[datetime | None]


class SweepRow(Base):
    """A set of trials, each an ordinary job (its row carries `sweep_id`); their rows are the truth
    about the sweep's progress, so the sweep keeps only what was asked and whether it was cancelled."""

    __tablename__ = "sweeps"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    owner: Mapped[str | None] = mapped_column(String(64), index=True)
    dataset_id: Mapped[str | None] = mapped_column(ForeignKey("datasets.id", ondelete="SET NULL"), index=True)
    request: Mapped[dict[str, Any]]  # {base, grid} or {base, random}, as posted
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class JobRow(Base):
    __tablename__ = "jobs"
    __table_args__ = (Index("ix_jobs_status_created_at", "status", "created_at"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    owner: Mapped[str | None] = mapped_column(String(64), index=True)
    dataset_id: Mapped[str | None] = mapped_column(ForeignKey("datasets.id", ondelete="SET NULL"), index=True)
    status: Mapped[str] = mapped_column(String(16))  # queued | running | succeeded | failed | cancelled
    name: Mapped[str | None] = mapped_column(String(255))
    note: Mapped[str | None] = mapped_column(Text)
    classes: Mapped[list[Any] | None] = mapped_column(JSON)  # the dataset's, kept: it may be deleted
    spec: Mapped[dict[str, Any]]
    sweep_id: Mapped[str | None] = mapped_column(ForeignKey("sweeps.id", ondelete="SET NULL"), index=True)
    sweep_params: Mapped[dict[str, Any] | None] = mapped_column(JSON)  # what this trial varies
    progress: Mapped[dict[str, Any]] = mapped_column(default=dict)
    best_epoch: Mapped[int | None]
    best_val_accuracy: Mapped[float | None]
    best_val_loss: Mapped[float | None]
    test_accuracy: Mapped[float | None]
    test_loss: Mapped[float | None]
    error: Mapped[str | None] = mapped_column(Text)
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    lease_owner: Mapped[str | None] = mapped_column(String(255))
    lease_expires: Mapped[float | None] = mapped_column(
        Float
    )  # unix seconds; a live lease means "running here"
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]


class TrainMetricRow(Base):
    __tablename__ = "train_metrics"
    __table_args__ = (UniqueConstraint("job_id", "step"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"))
    step: Mapped[int]
    epoch: Mapped[int]
    loss: Mapped[float]
    accuracy: Mapped[float]
    images_per_second: Mapped[float]
    time: Mapped[datetime]


class ValMetricRow(Base):
    __tablename__ = "val_metrics"
    __table_args__ = (UniqueConstraint("job_id", "epoch"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"))
    epoch: Mapped[int]
    loss: Mapped[float]
    accuracy: Mapped[float]
    train_loss: Mapped[float]
    train_accuracy: Mapped[float]
    per_class: Mapped[list[Any]]
    confusion_matrix: Mapped[list[Any]]
    time: Mapped[datetime]


class ApiTokenRow(Base):
    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    revoked_at: Mapped[datetime | None]  # kept, marked: a service that had tokens never opens itself


class DownloadLinkRow(Base):
    """A short-lived, single-use link to one of a job's files: a browser saves it straight from the
    server (a plain link cannot send a token). The link's secret is stored hashed."""

    __tablename__ = "download_links"

    secret_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), index=True)
    file: Mapped[str] = mapped_column(String(16))  # savedmodel, onnx, tflite or tensorboard
    expires_at: Mapped[datetime]
