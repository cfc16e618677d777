"""`GET /jobs/{id}/model?format=onnx|tflite`: a ZIP that predicts as the service does, built once."""

from __future__ import annotations

import io
import json
import shutil
import zipfile

import numpy as np

from core.config import get_settings
from core.model_files import build_model_archive
from core.storage import Storage
from model.exports.export import load_export
from testkit.service import downloaded_model
from tests.service.conftest import REDIS
from tests.service.test_worker import create_job
from worker.runner import run_job


def queued_archive_messages(job_id: str, fmt: str) -> int:
    import redis

    messages = [json.loads(m) for m in redis.Redis.from_url(REDIS).lrange("prepare", 0, -1)]
    return sum(m["headers"]["argsrepr"] == repr([job_id, fmt]) for m in messages)


def test_onnx_and_tflite_downloads(client, tmp_path):
    import onnxruntime

    job_id = create_job(client, tmp_path, num_epochs=1)
    early = client.get(f"/jobs/{job_id}/model", params={"format": "onnx"})
    assert early.status_code == 409 and "once it has succeeded" in early.json()["detail"]
    assert run_job(job_id, get_settings()) == "succeeded"

    wrong = client.get(f"/jobs/{job_id}/model", params={"format": "coreml"})
    assert wrong.status_code == 422 and "'onnx'" in json.dumps(wrong.json())

    storage = Storage(get_settings())
    images = np.random.default_rng(0).integers(0, 256, (3, 227, 227, 3), dtype=np.uint8)
    want = load_export(storage.export_dir(job_id)).forward(images)
    for fmt, model_file in (("onnx", "model.onnx"), ("tflite", "model.tflite")):
        asked = [client.get(f"/jobs/{job_id}/model", params={"format": fmt}) for _ in range(2)]
        assert [a.status_code for a in asked] == [202, 202] and asked[0].json()["status"] == "building"
        assert queued_archive_messages(job_id, fmt) == 1  # asked twice, built once, by a worker
        response = downloaded_model(client, job_id, fmt)
        assert f"finetune-{job_id}-{fmt}.zip" in response.headers["content-disposition"]
        archive = zipfile.ZipFile(io.BytesIO(response.content))
        folder = f"finetune-{job_id}-{fmt}"
        assert sorted(archive.namelist()) == sorted(
            f"{folder}/{name}" for name in (model_file, "labels.json", "preprocess.json")
        )
        assert json.loads(archive.read(f"{folder}/labels.json")) == ["cat", "dog"]
        archive.extractall(tmp_path / fmt)
        built = storage.model_archive(job_id, fmt).stat().st_mtime_ns
        assert client.get(f"/jobs/{job_id}/model", params={"format": fmt}).content == response.content
        assert storage.model_archive(job_id, fmt).stat().st_mtime_ns == built  # converted once, kept

    session = onnxruntime.InferenceSession(str(tmp_path / "onnx" / f"finetune-{job_id}-onnx" / "model.onnx"))
    (got,) = session.run(None, {"images": images})
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-7)

    shutil.rmtree(storage.export_dir(job_id) / "saved_model")  # a build that cannot succeed
    assert client.get(f"/jobs/{job_id}/model").status_code == 202
    assert build_model_archive(get_settings(), job_id, "savedmodel") == "failed"
    failed = client.get(f"/jobs/{job_id}/model")
    assert failed.status_code == 409 and failed.json()["error"] == "ModelBuildFailed", failed.text
    assert "export is gone" in failed.json()["detail"] and str(storage.root) not in failed.json()["detail"]
    assert client.get(f"/jobs/{job_id}/model").status_code == 202  # asking again retries

    job = client.get(f"/jobs/{job_id}").json()
    assert job["size_bytes"] == storage.job_size(job_id)
    assert client.delete(f"/jobs/{job_id}").status_code == 204
    assert not storage.run_dir(job_id).exists()
