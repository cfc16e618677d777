"""A prepared dataset's images: listed by class and split, and served as PNG (227×227, as stored)."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Header, Query, Response

from api.deps import OffsetQuery, OwnerDep, SessionDep, StorageDep
from api.schemas.common import error_responses
from api.schemas.datasets import DatasetImagesPublic
from core.browse import DatasetImages
from core.datasets import get_dataset

router = APIRouter(prefix="/datasets", tags=["datasets"])
ERRORS = error_responses(404, 422)


@router.get("/{dataset_id}/images", response_model=DatasetImagesPublic, responses=ERRORS)
def list_images(
    dataset_id: str,
    session: SessionDep,
    storage: StorageDep,
    owner: OwnerDep,
    label: Annotated[str | None, Query(alias="class", max_length=255)] = None,
    split: Annotated[Literal["train", "val", "test"] | None, Query()] = None,
    offset: OffsetQuery = 0,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
):
    """The images of a ready dataset, filtered by `class` and `split`, in pages."""
    get_dataset(session, dataset_id, owner)
    session.close()
    rows, count = DatasetImages(storage.dataset_dir(dataset_id)).page(label, split, offset, limit)
    return DatasetImagesPublic(data=rows, count=count)


@router.get(
    "/{dataset_id}/images/{index}",
    response_class=Response,
    responses={200: {"content": {"image/png": {}}}, 304: {"description": "not modified"}, **ERRORS},
)
def get_image(
    dataset_id: str,
    index: int,
    session: SessionDep,
    storage: StorageDep,
    owner: OwnerDep,
    if_none_match: Annotated[str | None, Header(max_length=128)] = None,
):
    """One stored image (what the network sees, before normalization) as PNG; cacheable."""
    get_dataset(session, dataset_id, owner)
    session.close()
    images = DatasetImages(storage.dataset_dir(dataset_id))
    etag = f'"{images.etag_prefix}-{index}"'
    headers = {"ETag": etag, "Cache-Control": "private, max-age=86400"}
    if if_none_match == etag:
        return Response(status_code=304, headers=headers)
    return Response(images.png(index), media_type="image/png", headers=headers)
