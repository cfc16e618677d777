"""Links a browser saves a job's files through: made with a token (so only the job's owner makes one,
as every job route checks), opened without one, once, within a minute."""

from __future__ import annotations

import io
import zipfile
from datetime import timedelta

from click.testing import CliRunner
from sqlalchemy import update

from cli.main import main as finetune_cli
from core.config import get_settings
from core.db import session_scope
from core.model_files import build_model_archive
from core.storage import Storage
from core.tables import DownloadLinkRow, utcnow
from tests.service.test_worker import create_job
from worker.runner import run_job


def test_a_link_is_opened_once_without_a_token_and_expires(client, tmp_path):
    token = CliRunner().invoke(finetune_cli, ["token", "create", "alice"]).output.strip()
    alice = {"Authorization": f"Bearer {token}"}
    client.headers.update(alice)  # alice's job
    job_id = create_job(client, tmp_path, num_epochs=1)
    del client.headers["Authorization"]
    assert run_job(job_id, get_settings()) == "succeeded"
    assert client.post(f"/jobs/{job_id}/model/link").status_code == 401  # making one needs the token

    building = client.post(f"/jobs/{job_id}/model/link", headers=alice)
    assert building.status_code == 202 and building.headers["retry-after"]
    assert build_model_archive(get_settings(), job_id, "savedmodel") == "ready"
    link = client.post(f"/jobs/{job_id}/model/link", headers=alice)
    assert link.status_code == 201, link.text
    assert link.json()["filename"] == f"finetune-{job_id}.zip" and link.json()["expires_in_seconds"] == 60
    assert token not in link.json()["url"]

    saved = client.get(link.json()["url"])  # no Authorization header: the link is the credential
    assert saved.status_code == 200 and "attachment" in saved.headers["content-disposition"]
    assert saved.content == Storage(get_settings()).model_archive(job_id, "savedmodel").read_bytes()
    again = client.get(link.json()["url"])
    assert again.status_code == 404 and again.json()["error"] == "DownloadLinkNotFound"

    late = client.post(f"/jobs/{job_id}/model/link", headers=alice).json()["url"]
    with session_scope() as session:
        session.execute(update(DownloadLinkRow).values(expires_at=utcnow() - timedelta(seconds=1)))
    assert client.get(late).status_code == 404
    assert client.get("/downloads/made-up-secret").status_code == 404

    events = client.post(f"/jobs/{job_id}/tensorboard/link", headers=alice)
    assert events.status_code == 201, events.text
    names = zipfile.ZipFile(io.BytesIO(client.get(events.json()["url"]).content)).namelist()
    assert any("events.out.tfevents" in name for name in names)
