"""The HTTP contract, in process, against the real PostgreSQL and Redis."""

from __future__ import annotations

import io
import json
import zipfile

import pytest
import redis

from testkit.images import class_folder_zip, make_image, png_header_only
from testkit.service import LOOPBACK_CLIENT, prepare_now, ready_dataset, upload_dataset
from tests.service.conftest import REDIS


def assert_error(response, status: int, error: str, *fragments: str) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error", "detail"} and body["error"] == error, body
    for fragment in fragments:
        assert fragment in body["detail"], body


def test_health_and_readiness(client):
    assert client.get("/healthz").json() == {"status": "ok", "checks": {}}
    ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["checks"] == {
        "database": "ok",
        "broker": "ok",
        "weights": "ok",
    }


def test_upload_is_enqueued_then_prepared(client, tmp_path):
    dataset = upload_dataset(client, tmp_path, per_class=8, name="pets")
    assert dataset["status"] == "preparing" and dataset["name"] == "pets"
    message = json.loads(redis.Redis.from_url(REDIS).lpop("prepare"))
    assert (
        message["headers"]["task"] == "worker.tasks.prepare_dataset"
        and message["headers"]["argsrepr"] == f"['{dataset['id']}']"
    )
    prepare_now(dataset["id"])
    ready = client.get(f"/datasets/{dataset['id']}").json()
    assert ready["status"] == "ready" and ready["classes"] == ["cat", "dog"] and ready["num_images"] == 16
    assert ready["splits"] == {"train": 10, "val": 4, "test": 2}
    listing = client.get("/datasets").json()
    assert listing["count"] == 1 and listing["data"][0]["id"] == dataset["id"]


def test_a_dataset_whose_images_all_fail_to_decode_fails_with_the_reason(client, tmp_path):
    archive = class_folder_zip(
        tmp_path / "x.zip", per_class=0, extra={"cat/a.jpg": b"junk", "dog/b.jpg": b"junk"}
    )
    dataset = client.post(
        "/datasets", files={"file": ("x.zip", archive.read_bytes(), "application/zip")}
    ).json()
    prepare_now(dataset["id"])
    failed = client.get(f"/datasets/{dataset['id']}").json()
    assert failed["status"] == "failed" and "no readable images" in failed["error"]
    job = client.post("/jobs", json={"dataset_id": dataset["id"]})
    assert_error(job, 409, "DatasetNotReady", "failed", "no readable images")


def poison_uploads(tmp_path) -> dict[str, tuple[bytes, str]]:
    """Uploads whose problem the ZIP's listing already shows, with what the answer must say."""
    good = class_folder_zip(tmp_path / "good.zip", per_class=3).read_bytes()
    one_class = class_folder_zip(tmp_path / "one.zip", classes=("cat",), per_class=3).read_bytes()
    notes = class_folder_zip(tmp_path / "txt.zip", per_class=0, extra={"cat/a.txt": b"x", "dog/b.txt": b"y"})
    empty = io.BytesIO()
    zipfile.ZipFile(empty, "w").close()
    traversal = io.BytesIO()
    with zipfile.ZipFile(traversal, "w") as archive:
        archive.writestr("../../etc/cat/x.jpg", make_image(0, 1))
    bomb = io.BytesIO()
    with zipfile.ZipFile(bomb, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("cat/a.jpg", b"\0" * (8 * 1024 * 1024))
        archive.writestr("dog/b.jpg", make_image(1, 1))
    return {
        "not-a-zip.zip": (b"plain text, not an archive", "is not a ZIP"),
        "truncated.zip": (good[: len(good) // 2] + good[-22:], "damaged ZIP"),
        "empty.zip": (empty.getvalue(), "ZIP is empty"),
        "one-class.zip": (one_class, "need at least 2 classes"),
        "no-images.zip": (notes.read_bytes(), "hold no image files"),
        "traversal.zip": (traversal.getvalue(), "unsafe path"),
        "bomb.zip": (bomb.getvalue(), "zip bomb"),
    }


def test_poison_uploads_are_refused_at_once_naming_the_file(client, tmp_path):
    for filename, (content, reason) in poison_uploads(tmp_path).items():
        response = client.post("/datasets", files={"file": (filename, content, "application/zip")})
        assert_error(response, 422, "InvalidDataset", filename, reason)
        assert ".upload" not in response.json()["detail"]  # never the internal temp file
    assert client.get("/datasets").json()["count"] == 0
    leftovers = (
        list((tmp_path.parent / "data").rglob("*.upload")) if (tmp_path.parent / "data").exists() else []
    )
    assert leftovers == []


def test_a_long_file_name_is_kept_to_255_characters(client, tmp_path):
    archive = class_folder_zip(tmp_path / "x.zip", per_class=3).read_bytes()
    response = client.post("/datasets", files={"file": ("n" * 400 + ".zip", archive, "application/zip")})
    assert response.status_code == 201, response.text
    assert response.json()["name"] == "n" * 251 + ".zip"


def test_malformed_json_is_422_saying_so(client):
    response = client.post("/jobs", content=b'{"dataset_id": ', headers={"content-type": "application/json"})
    assert_error(response, 422, "ValidationError", "request body is not valid JSON")


def test_bad_upload_forms(client):
    assert_error(client.post("/datasets"), 422, "ValidationError", "file")
    assert_error(
        client.post("/datasets", files={"file": ("x.zip", b"", "application/zip")}),
        422,
        "InvalidDataset",
        "empty",
    )
    response = client.post(
        "/datasets",
        files={"file": ("x.zip", b"PK", "application/zip")},
        data={"val_fraction": "0.6", "test_fraction": "0.5"},
    )
    assert_error(response, 422, "InvalidDataset", "below 1")
    assert_error(
        client.post("/datasets", files={"file": ("x.zip", b"PK")}, data={"val_fraction": "nan"}),
        422,
        "ValidationError",
        "val_fraction",
    )


def test_upload_over_the_limit_is_413(service_env, clean_tables, monkeypatch):
    from fastapi.testclient import TestClient

    from api.main import create_app
    from core.config import get_settings

    monkeypatch.setenv("FINETUNE_MAX_UPLOAD_BYTES", "1000")
    get_settings.cache_clear()
    try:
        with TestClient(create_app(), client=LOOPBACK_CLIENT) as small:
            response = small.post("/datasets", files={"file": ("big.zip", b"x" * 200_000, "application/zip")})
            assert_error(response, 413, "PayloadTooLarge", "larger than")
    finally:
        get_settings.cache_clear()


def test_a_predict_body_over_images_times_bytes_is_413_while_it_streams(
    service_env, clean_tables, monkeypatch
):
    from fastapi.testclient import TestClient

    from api.main import create_app
    from core.config import get_settings

    monkeypatch.setenv("FINETUNE_MAX_PREDICT_BYTES", "100000")
    monkeypatch.setenv("FINETUNE_MAX_PREDICT_IMAGES", "2")
    get_settings.cache_clear()
    try:
        with TestClient(create_app(), client=LOOPBACK_CLIENT) as small:
            images = [("image", (f"{i}.jpg", b"x" * 90_000)) for i in range(3)]  # each allowed, not together
            response = small.post("/predict", files=images, data={"model": "imagenet"})
            assert_error(response, 413, "PayloadTooLarge", "larger than")
    finally:
        get_settings.cache_clear()


def test_job_lifecycle_without_a_worker(client, tmp_path):
    dataset = ready_dataset(client, tmp_path)
    created = client.post("/jobs", json={"dataset_id": dataset["id"], "num_epochs": 2, "learning_rate": 0.01})
    assert created.status_code == 202, created.text
    job = created.json()
    assert (
        job["status"] == "queued"
        and job["spec"]["num_epochs"] == 2
        and job["spec"]["train_layers"] == ["fc7", "fc8"]
    )
    assert job["progress"]["fraction"] == 0 and job["best"] is None and job["test"] is None
    assert client.get(f"/jobs/{job['id']}").json()["id"] == job["id"]
    assert_error(client.delete(f"/datasets/{dataset['id']}"), 409, "DatasetInUse")
    cancelled = client.post(f"/jobs/{job['id']}/cancel").json()
    assert cancelled["status"] == "cancelled" and cancelled["finished_at"]
    assert (
        client.post(f"/jobs/{job['id']}/cancel").json()["status"] == "cancelled"
    )  # cancelling twice is harmless
    resumed = client.post(f"/jobs/{job['id']}/resume")
    assert resumed.status_code == 202 and resumed.json()["status"] == "queued"
    assert_error(client.post(f"/jobs/{job['id']}/resume"), 409, "JobStateConflict", "queued")
    assert_error(client.get(f"/jobs/{job['id']}/model"), 409, "JobStateConflict", "succeeded")
    metrics = client.get(f"/jobs/{job['id']}/metrics").json()
    assert metrics == {"train": [], "val": [], "more": False}


def test_jobs_are_listed_newest_first_with_filter_and_pages(client, tmp_path):
    dataset = ready_dataset(client, tmp_path)
    ids = [client.post("/jobs", json={"dataset_id": dataset["id"], "seed": i}).json()["id"] for i in range(3)]
    client.post(f"/jobs/{ids[0]}/cancel")
    listing = client.get("/jobs").json()
    assert listing["count"] == 3 and [j["id"] for j in listing["data"]] == ids[::-1]
    page = client.get("/jobs", params={"limit": 1, "offset": 1}).json()
    assert page["count"] == 3 and [j["id"] for j in page["data"]] == [ids[1]]
    cancelled = client.get("/jobs", params={"status": "cancelled"}).json()
    assert [j["id"] for j in cancelled["data"]] == [ids[0]]
    assert_error(client.get("/jobs", params={"status": "sleeping"}), 422, "ValidationError", "status")


@pytest.mark.parametrize(
    "field, value, fragment",
    [
        ("learning_rate", 0, "learning_rate"),
        ("learning_rate", -1, "learning_rate"),
        ("learning_rate", 1e9, "learning_rate"),
        ("num_epochs", 0, "num_epochs"),
        ("num_epochs", 100000, "num_epochs"),
        ("batch_size", 0, "batch_size"),
        ("batch_size", 10**6, "batch_size"),
        ("train_layers", [], "train_layers"),
        ("train_layers", ["fc9"], "train_layers"),
        ("dropout_rate", 1.0, "dropout_rate"),
        ("dropout_rate", -0.5, "dropout_rate"),
        ("optimizer", "rmsprop", "optimizer"),
        ("weights", "/etc/passwd", "weights"),
        ("unknown_option", 1, "unknown_option"),
        ("train_layers", ["fc8", "fc8"], "twice"),
    ],
)
def test_invalid_job_specs_are_422_naming_the_field(client, tmp_path, field, value, fragment):
    response = client.post("/jobs", json={"dataset_id": "x" * 32, field: value})
    assert_error(response, 422, "ValidationError", fragment)


def test_non_finite_learning_rate_is_refused(client):
    response = client.post(
        "/jobs",
        content='{"dataset_id": "abc", "learning_rate": NaN}',
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 422 and response.json()["error"] == "ValidationError"


def test_unknown_ids_are_404(client):
    assert_error(client.get("/jobs/nope"), 404, "JobNotFound", "nope")
    assert_error(client.get("/datasets/nope"), 404, "DatasetNotFound")
    assert_error(client.post("/jobs", json={"dataset_id": "nope"}), 404, "DatasetNotFound")
    assert_error(client.post("/jobs/nope/cancel"), 404, "JobNotFound")
    assert_error(client.get("/jobs/nope/metrics"), 404, "JobNotFound")
    assert_error(client.get("/no/such/route"), 404, "NotFound")


def test_imagenet_weights_missing_is_409_with_the_install_command(client, tmp_path, monkeypatch):
    from core.config import get_settings

    dataset = ready_dataset(client, tmp_path)
    monkeypatch.setattr(get_settings(), "weights_path", tmp_path / "absent.npy")
    response = client.post("/jobs", json={"dataset_id": dataset["id"]})
    assert_error(response, 409, "WeightsNotInstalled", "finetune download-weights")
    assert client.post("/jobs", json={"dataset_id": dataset["id"], "weights": "random"}).status_code == 202
    predict = client.post(
        "/predict", files={"image": ("a.jpg", make_image(0, 1))}, data={"model": "imagenet"}
    )
    assert_error(predict, 409, "WeightsNotInstalled", "finetune download-weights")


def test_continuing_needs_a_succeeded_job(client, tmp_path):
    dataset = ready_dataset(client, tmp_path)
    first = client.post("/jobs", json={"dataset_id": dataset["id"]}).json()
    response = client.post("/jobs", json={"dataset_id": dataset["id"], "weights": f"job:{first['id']}"})
    assert_error(response, 409, "JobStateConflict", "queued")


def test_predict_errors(client, tmp_path):
    image = make_image(0, 1)
    assert_error(
        client.post("/predict", files={"image": ("a.jpg", image)}), 422, "InvalidRequest", "exactly one"
    )
    assert_error(
        client.post("/predict", files={"image": ("a.jpg", image)}, data={"model": "vgg"}),
        422,
        "InvalidRequest",
        "imagenet",
    )
    assert_error(client.post("/predict", data={"model": "imagenet"}), 422, "ValidationError", "image")
    assert_error(
        client.post("/predict", files={"image": ("a.jpg", image)}, data={"job_id": "nope"}),
        404,
        "JobNotFound",
    )
    response = client.post("/predict", files={"image": ("a.txt", b"hello")}, data={"model": "imagenet"})
    assert_error(response, 415, "InvalidImage", "image 1")
    response = client.post(
        "/predict", files=[("image", ("a.jpg", image)), ("image", ("b.jpg", b""))], data={"model": "imagenet"}
    )
    assert_error(response, 415, "InvalidImage", "image 2", "empty")
    dataset = ready_dataset(client, tmp_path)
    job = client.post("/jobs", json={"dataset_id": dataset["id"]}).json()
    response = client.post("/predict", files={"image": ("a.jpg", image)}, data={"job_id": job["id"]})
    assert_error(response, 409, "JobStateConflict", "queued")
    too_many = [("image", (f"{i}.jpg", image)) for i in range(17)]
    assert_error(
        client.post("/predict", files=too_many, data={"model": "imagenet"}),
        422,
        "TooManyImages",
        "at most 16",
    )


def test_predict_with_the_pretrained_network(client):
    from model.exports.export import imagenet_classes

    response = client.post(
        "/predict",
        files=[("image", ("a.jpg", make_image(0, 1))), ("image", ("b.png", make_image(1, 2, fmt="PNG")))],
        data={"model": "imagenet", "top_k": "3"},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["model"] == "imagenet" and len(body["predictions"]) == 2
    names = imagenet_classes()
    for ranked in body["predictions"]:
        assert (
            len(ranked) == 3
            and ranked[0]["probability"] >= ranked[1]["probability"] >= ranked[2]["probability"]
        )
        assert all(names[p["class_index"]] == p["label"] for p in ranked)


def test_openapi_documents_the_contract(client):
    schema = client.get("/openapi.json").json()
    for path in (
        "/datasets",
        "/datasets/{dataset_id}",
        "/jobs",
        "/jobs/{job_id}",
        "/jobs/{job_id}/metrics",
        "/jobs/{job_id}/events",
        "/jobs/{job_id}/cancel",
        "/jobs/{job_id}/resume",
        "/jobs/{job_id}/model",
        "/jobs/{job_id}/tensorboard",
        "/predict",
        "/healthz",
        "/readyz",
    ):
        assert path in schema["paths"], path
    assert client.get("/docs").status_code == 200


def test_api_imports_no_tensorflow_at_start():
    import subprocess
    import sys

    code = (
        "import sys, api.main; "
        "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules; print('ok')"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.stdout.strip() == "ok", out.stderr[-2000:]


def test_broker_down_keeps_the_job_and_says_so_at_readyz(client, tmp_path, monkeypatch):
    from core.config import get_settings
    from core.queue import get_celery
    from testkit.processes import free_port

    dataset = ready_dataset(client, tmp_path)
    monkeypatch.setattr(get_settings(), "broker_url", f"redis://127.0.0.1:{free_port()}/0")
    get_celery.cache_clear()
    try:
        created = client.post("/jobs", json={"dataset_id": dataset["id"]})
        assert created.status_code == 202 and created.json()["status"] == "queued"  # the row is the truth
        ready = client.get("/readyz")
        assert ready.status_code == 503 and ready.json()["checks"]["broker"].startswith("unreachable")
        assert ready.json()["checks"]["database"] == "ok"
    finally:
        get_celery.cache_clear()


def test_job_specs_say_what_runs(client, tmp_path):
    dataset = ready_dataset(client, tmp_path)
    frozen_random = client.post(
        "/jobs", json={"dataset_id": dataset["id"], "weights": "random", "train_layers": ["fc7", "fc8"]}
    )
    assert_error(
        frozen_random, 422, "ValidationError", "leaves conv1, conv2, conv3, conv4, conv5, fc6 frozen"
    )
    frozen_fc8 = client.post(
        "/jobs", json={"dataset_id": dataset["id"], "train_layers": ["fc7"], "reinit_layers": []}
    )
    assert_error(frozen_fc8, 422, "InvalidRequest", "2 classes and the starting weights 1000", "fc8")
    default = client.post("/jobs", json={"dataset_id": dataset["id"]}).json()
    assert (default["spec"]["optimizer"], default["spec"]["momentum"]) == ("sgd", 0.9)
    adam = client.post("/jobs", json={"dataset_id": dataset["id"], "optimizer": "adam"}).json()
    assert adam["spec"]["momentum"] is None
    scratch = client.post("/jobs", json={"dataset_id": dataset["id"], "weights": "random"}).json()
    assert scratch["spec"]["train_layers"] == [
        "conv1",
        "conv2",
        "conv3",
        "conv4",
        "conv5",
        "fc6",
        "fc7",
        "fc8",
    ]


def test_an_image_above_the_pixel_limit_is_refused_before_decoding(client):
    response = client.post(
        "/predict", files={"image": ("bomb.png", png_header_only(10_000, 10_001))}, data={"model": "imagenet"}
    )
    assert_error(response, 415, "InvalidImage", "image 1", "100,010,000 pixels", "limit is 100,000,000")


def test_every_json_body_has_a_limit(client):
    huge = {"dataset_id": "x", "base": {"notes": "n" * (1024**2 + 10)}}
    for path in ("/jobs", "/sweeps"):
        assert_error(client.post(path, json=huge), 413, "PayloadTooLarge", "larger than 1048576 bytes")


def test_options_and_405_name_every_method_of_the_path(client):
    answered = client.options("/jobs/some-id")
    assert answered.status_code == 204 and answered.headers["allow"] == "DELETE, GET, HEAD, OPTIONS, PATCH"
    assert client.options("/jobs").headers["allow"] == "GET, HEAD, OPTIONS, POST"
    refused = client.put("/jobs/some-id", json={})
    assert_error(refused, 405, "MethodNotAllowed", "PUT is not allowed")
    assert refused.headers["allow"] == "DELETE, GET, HEAD, OPTIONS, PATCH"
    assert client.options("/no/such/route").status_code == 404


def test_an_offset_past_the_database_integers_is_422_naming_it(client):
    for path in ("/jobs", "/datasets", "/sweeps"):
        assert_error(client.get(path, params={"offset": 2**63}), 422, "ValidationError", "offset")
