"""Dataset bodies: what the dataset routes answer, and a dataset's prepared images."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from api.schemas.common import UtcDatetime

REJECTED_IN_LISTINGS = 100  # a listing stays small; GET /datasets/{id} has every rejected file


class RejectedFile(BaseModel):
    path: str
    reason: str


class DatasetPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    name: str
    note: str | None = None
    status: str = Field(description="preparing, ready or failed")
    classes: list[str]
    num_images: int
    splits: dict[str, int] = Field(description="images per split: train, val, test")
    rejected: list[RejectedFile] = Field(
        description=f"files left out, with reasons; listings show the first {REJECTED_IN_LISTINGS}"
    )
    rejected_count: int = 0
    size_bytes: int = Field(default=0, description="bytes on disk: the prepared store and any upload")
    error: str | None
    val_fraction: float
    test_fraction: float
    seed: int
    created_at: UtcDatetime

    @classmethod
    def from_row(cls, row, storage, rejected_limit: int | None = None) -> DatasetPublic:
        public = cls.model_validate(row)
        rejected = public.rejected[:rejected_limit] if rejected_limit is not None else public.rejected
        return public.model_copy(
            update={
                "rejected": rejected,
                "rejected_count": len(public.rejected),
                "size_bytes": storage.dataset_size(row.id),
            }
        )


class DatasetsPublic(BaseModel):
    data: list[DatasetPublic]
    count: int


class DatasetImage(BaseModel):
    index: int
    path: str
    label: str
    split: str


class DatasetImagesPublic(BaseModel):
    data: list[DatasetImage]
    count: int


class DatasetUpdate(BaseModel):
    """A dataset's name and note; only the fields sent change (a null note clears it)."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(default=None, min_length=1, max_length=255, description="a dataset keeps a name")
    note: str | None = Field(default=None, max_length=4000)
