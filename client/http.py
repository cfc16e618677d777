"""FinetuneClient: every call of the public API, errors as ClientError with the API's detail."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx

from client.events import parse_events

DEFAULT_URL = "http://127.0.0.1:8000"
ENDED = ("succeeded", "failed", "cancelled")


class ClientError(RuntimeError):
    """An answer other than 2xx: `status`, the API's `error` name and its `detail`."""

    def __init__(self, status: int, error: str, detail: str):
        super().__init__(f"{status} {error}: {detail}")
        self.status, self.error, self.detail = status, error, detail


class ServiceUnreachable(ClientError):
    """No answer at all: the service is down, or FINETUNE_URL names the wrong place."""

    def __init__(self, url: str, reason: str):
        super().__init__(0, "ServiceUnreachable", f"cannot reach {url}: {reason}")


def _reason(exc: httpx.TransportError) -> str:
    text = str(exc) or type(exc).__name__
    return text.split("] ", 1)[-1].lower() if text.startswith("[Errno") else text


class _CountingFile:
    """A file whose reads report progress: how an upload's bytes are counted as they go."""

    def __init__(self, path: Path, progress: Callable[[int, int], None] | None):
        self._file, self.total, self.sent, self.progress = open(path, "rb"), path.stat().st_size, 0, progress

    def read(self, size: int = -1) -> bytes:
        chunk = self._file.read(size)
        self.sent += len(chunk)
        if self.progress:
            self.progress(self.sent, self.total)
        return chunk

    def close(self) -> None:
        self._file.close()


class FinetuneClient:
    def __init__(self, url: str | None = None, token: str | None = None, timeout: float = 60.0):
        url = url or os.environ.get("FINETUNE_URL") or DEFAULT_URL
        token = token or os.environ.get("FINETUNE_TOKEN")
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.url = url.rstrip("/")
        self.http = httpx.Client(base_url=self.url, headers=headers, timeout=timeout)

    def close(self) -> None:
        self.http.close()

    def _call(self, method: str, path: str, **kwargs) -> Any:
        try:
            response = self.http.request(method, path, **kwargs)
        except httpx.TransportError as exc:
            raise ServiceUnreachable(self.url, _reason(exc)) from None
        return self._checked(response)

    @staticmethod
    def _checked(response: httpx.Response) -> Any:
        if response.is_success:
            return None if response.status_code == 204 else response.json()
        try:
            body = response.json()
        except ValueError:
            body = {}
        raise ClientError(
            response.status_code, body.get("error", "HTTPError"), body.get("detail", response.text)
        )

    # --- datasets ---------------------------------------------------------------------------
    def upload_dataset(
        self,
        path: str | os.PathLike,
        name: str | None = None,
        val_fraction: float = 0.15,
        test_fraction: float = 0.15,
        seed: int = 0,
        progress: Callable[[int, int], None] | None = None,
    ) -> dict:
        """Upload a ZIP; `progress(sent, total)` is called as its bytes go out."""
        path = Path(path)
        data = {"val_fraction": str(val_fraction), "test_fraction": str(test_fraction), "seed": str(seed)}
        if name:
            data["name"] = name
        upload = _CountingFile(path, progress)
        try:
            return self._call(
                "POST", "/datasets", files={"file": (path.name, upload, "application/zip")}, data=data
            )
        finally:
            upload.close()

    def get_dataset(self, dataset_id: str) -> dict:
        return self._call("GET", f"/datasets/{dataset_id}")

    def list_datasets(self, offset: int = 0, limit: int = 100) -> dict:
        return self._call("GET", "/datasets", params={"offset": offset, "limit": limit})

    def wait_for_dataset(self, dataset_id: str, timeout: float = 3600.0, interval: float = 1.0) -> dict:
        """The dataset once it is ready or failed."""
        deadline = time.monotonic() + timeout
        while (dataset := self.get_dataset(dataset_id))["status"] == "preparing":
            if time.monotonic() > deadline:
                raise TimeoutError(f"dataset {dataset_id} still preparing after {timeout} s")
            time.sleep(interval)
        return dataset

    def update_dataset(self, dataset_id: str, **changes) -> dict:
        """A new `name` or `note` (a note of None clears it)."""
        return self._call("PATCH", f"/datasets/{dataset_id}", json=changes)

    def delete_dataset(self, dataset_id: str) -> None:
        self._call("DELETE", f"/datasets/{dataset_id}")

    # --- jobs -------------------------------------------------------------------------------
    def create_job(self, dataset_id: str, **spec) -> dict:
        return self._call("POST", "/jobs", json={"dataset_id": dataset_id, **spec})

    def get_job(self, job_id: str) -> dict:
        return self._call("GET", f"/jobs/{job_id}")

    def list_jobs(self, status: str | None = None, offset: int = 0, limit: int = 50) -> dict:
        params = {"offset": offset, "limit": limit, **({"status": status} if status else {})}
        return self._call("GET", "/jobs", params=params)

    def update_job(self, job_id: str, **changes) -> dict:
        """A new `name` or `note` (None clears one); what runs is not touched."""
        return self._call("PATCH", f"/jobs/{job_id}", json=changes)

    def cancel_job(self, job_id: str) -> dict:
        return self._call("POST", f"/jobs/{job_id}/cancel")

    def resume_job(self, job_id: str) -> dict:
        return self._call("POST", f"/jobs/{job_id}/resume")

    def delete_job(self, job_id: str) -> None:
        self._call("DELETE", f"/jobs/{job_id}")

    def metrics(self, job_id: str, **params) -> dict:
        return self._call("GET", f"/jobs/{job_id}/metrics", params=params)

    def follow(
        self, job_id: str, last_event_id: str | None = None, give_up_after: float = 60.0
    ) -> Iterator[tuple[str, dict]]:
        """The job's events as (name, data) until it ends. A dropped stream is picked up again
        after its last event (`Last-Event-ID`); `give_up_after` seconds without an answer raise
        `ServiceUnreachable`."""
        failing_since = None
        while True:
            headers = {"Last-Event-ID": last_event_id} if last_event_id else {}
            try:
                with self.http.stream(
                    "GET", f"/jobs/{job_id}/events", headers=headers, timeout=None
                ) as response:
                    failing_since = None
                    if not response.is_success:
                        response.read()
                        self._checked(response)
                    for name, data, event_id in parse_events(response.iter_lines()):
                        last_event_id = event_id or last_event_id
                        yield name, data
                        if name == "end":
                            return
                return
            except httpx.TransportError as exc:
                failing_since = failing_since or time.monotonic()
                if time.monotonic() - failing_since > give_up_after:
                    raise ServiceUnreachable(self.url, _reason(exc)) from None
                time.sleep(1.0)

    def download_model(
        self,
        job_id: str,
        to: str | os.PathLike,
        format: str = "savedmodel",
        timeout: float = 1800.0,
        progress: Callable[[int, int | None], None] | None = None,
        building: Callable[[float], None] | None = None,
    ) -> Path:
        """The model as a ZIP: `savedmodel` (the whole export), `onnx` or `tflite`, streamed to
        `to`. The service's worker builds a format on its first request (202 until then): this
        asks again until it is there, at most `timeout` seconds, calling `building(seconds
        waited)` meanwhile; `progress(received, total)` follows the transfer."""
        started = time.monotonic()
        while True:
            wait = self._download_once(f"/jobs/{job_id}/model", {"format": format}, Path(to), progress)
            if wait is None:
                return Path(to)
            if time.monotonic() + wait > started + timeout:
                raise ClientError(
                    202, "ModelBuilding", f"the {format} model was not built within {timeout:g} s"
                )
            if building:
                building(time.monotonic() - started)
            time.sleep(wait)

    def download_tensorboard(
        self, job_id: str, to: str | os.PathLike, progress: Callable[[int, int | None], None] | None = None
    ) -> Path:
        """The job's TensorBoard event files as a ZIP."""
        self._download_once(f"/jobs/{job_id}/tensorboard", {}, Path(to), progress)
        return Path(to)

    def _download_once(self, path: str, params: dict, to: Path, progress) -> float | None:
        """Stream one answer into `to`; None when done, or the seconds to wait when it is 202."""
        try:
            with self.http.stream("GET", path, params=params) as response:
                if response.status_code == 202:
                    return float(response.headers.get("retry-after") or 2)
                if not response.is_success:
                    response.read()
                    self._checked(response)
                total = (
                    int(response.headers["content-length"]) if "content-length" in response.headers else None
                )
                partial = to.with_name(to.name + ".part")
                with open(partial, "wb") as out:
                    for chunk in response.iter_bytes():
                        out.write(chunk)
                        if progress:
                            progress(response.num_bytes_downloaded, total)
                os.replace(partial, to)
                return None
        except httpx.TransportError as exc:
            raise ServiceUnreachable(self.url, _reason(exc)) from None

    # --- sweeps -----------------------------------------------------------------------------
    def create_sweep(
        self, dataset_id: str, grid: dict | None = None, random: dict | None = None, **base
    ) -> dict:
        """A sweep over `grid` ({field: [values]}) or `random` ({n_trials, seed, space}); `base`
        holds the options every trial shares."""
        body = {"dataset_id": dataset_id, "base": base, "grid": grid, "random": random}
        return self._call("POST", "/sweeps", json={k: v for k, v in body.items() if v is not None})

    def get_sweep(self, sweep_id: str) -> dict:
        return self._call("GET", f"/sweeps/{sweep_id}")

    def list_sweeps(self, offset: int = 0, limit: int = 20) -> dict:
        return self._call("GET", "/sweeps", params={"offset": offset, "limit": limit})

    def cancel_sweep(self, sweep_id: str) -> dict:
        return self._call("POST", f"/sweeps/{sweep_id}/cancel")

    def delete_sweep(self, sweep_id: str) -> None:
        self._call("DELETE", f"/sweeps/{sweep_id}")

    def wait_for_sweep(self, sweep_id: str, timeout: float = 24 * 3600.0, interval: float = 2.0,
                       on_poll: Callable[[dict], None] | None = None) -> dict:  # fmt: skip
        """The sweep once every trial has ended; `on_poll(sweep)` sees each poll."""
        deadline = time.monotonic() + timeout
        while True:
            sweep = self.get_sweep(sweep_id)
            if on_poll:
                on_poll(sweep)
            if sweep["status"] != "running":
                return sweep
            if time.monotonic() > deadline:
                raise TimeoutError(f"sweep {sweep_id} still running after {timeout} s")
            time.sleep(interval)

    # --- prediction -------------------------------------------------------------------------
    def predict(
        self,
        images: list[str | os.PathLike | bytes],
        job_id: str | None = None,
        model: str | None = None,
        top_k: int = 5,
    ) -> dict:
        """Top-k per image with a succeeded job (`job_id`) or `model="imagenet"`."""
        files = []
        for i, image in enumerate(images):
            data = image if isinstance(image, bytes) else Path(image).read_bytes()
            files.append(("image", (f"image-{i}" if isinstance(image, bytes) else Path(image).name, data)))
        form = {
            "top_k": str(top_k),
            **({"job_id": job_id} if job_id else {}),
            **({"model": model} if model else {}),
        }
        return self._call("POST", "/predict", files=files, data=form)

    def predict_many(
        self,
        images: list[str | os.PathLike],
        job_id: str | None = None,
        model: str | None = None,
        top_k: int = 5,
        batch_size: int = 16,
    ) -> Iterator[tuple[str | os.PathLike, list[dict]]]:
        """(image, top-k) for any number of images, in requests the service takes: `batch_size`
        at a time, and fewer when the service says a request holds too many or too much."""
        position = 0
        while position < len(images):
            batch = images[position : position + batch_size]
            try:
                answer = self.predict(batch, job_id=job_id, model=model, top_k=top_k)
            except ClientError as exc:
                if exc.error in ("TooManyImages", "PayloadTooLarge") and len(batch) > 1:
                    batch_size = len(batch) // 2
                    continue
                raise
            yield from zip(batch, answer["predictions"])
            position += len(batch)
