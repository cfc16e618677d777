"""`GET /downloads/{secret}`: a job's file through a link made with a token, for browsers."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, BackgroundTasks, Path
from fastapi.responses import FileResponse

from api.deps import SessionDep, StorageDep
from api.routes.job_files import ZIP, model_response, tensorboard_response
from api.schemas.common import error_responses
from core.download_links import redeem_link
from core.errors import DownloadLinkNotFound

router = APIRouter(prefix="/downloads", tags=["jobs"])


@router.get("/{secret}", response_class=FileResponse, responses={**ZIP, **error_responses(404, 422, 503)})
def download(
    secret: Annotated[str, Path(min_length=1, max_length=64)],
    session: SessionDep,
    storage: StorageDep,
    background: BackgroundTasks,
):
    """The file a link from `POST /jobs/{id}/model/link` or `/tensorboard/link` names. No token: the
    link is the credential, good once, within a minute of its making; then 404."""
    job_id, file = redeem_link(session, secret)
    session.commit()  # used up before the file streams, whatever happens to the transfer
    if file == "tensorboard":
        if not storage.tensorboard_dir(job_id).is_dir():
            raise DownloadLinkNotFound("the job's TensorBoard files are gone")
        return tensorboard_response(storage, job_id, background)
    if not storage.model_archive(job_id, file).is_file():
        raise DownloadLinkNotFound("the model's file is gone (its job was deleted?)")
    return model_response(storage, job_id, file)
