"""A finetune through the service end to end, against the naive float32 Keras fit, in one run.

(s) `finetune up` on the embedded default: upload a ZIP of generated images, `POST /jobs` (fc7+fc8,
    flips, `precision: auto`), until the job is `succeeded`; timed from the POST. It is the
    worker's second job (the first, on other images, is reported too). Its parts come
    from the job's own timestamps: queue and start-up (POST → first step), training (first → last
    step), and the end (last validation → succeeded: test evaluation and the float32 export).
(b) the naive Keras `fit` of the same network and images, recomputing every layer every epoch.

    python -m bench.service_speed --per-class 150 --epochs 10
"""

from __future__ import annotations

import argparse
import os
import time
from datetime import datetime

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from bench.embedded import start_service  # noqa: E402
from bench.scratch import scratch_folder


def seconds_between(a: str, b: str) -> float:
    return (datetime.fromisoformat(b) - datetime.fromisoformat(a)).total_seconds()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--per-class", type=int, default=150, help="Images per class (two classes).")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=128)
    args = parser.parse_args()

    import httpx
    import keras
    import numpy as np

    from model.data.dataset import SplitFractions, prepare_dataset
    from model.exports.weights import WEIGHTS_FILE_NAME
    from model.training.assembly import assemble
    from model.training.spec import TrainSpec
    from testkit.images import class_folder_zip
    from testkit.service import upload_and_wait, wait_for

    work = scratch_folder("finetune-service-bench-")
    archive = class_folder_zip(work / "pets.zip", per_class=args.per_class)
    spec = {"num_epochs": args.epochs, "batch_size": args.batch_size, "augment_flip": True}
    up, url, data = start_service(work)
    weights = data / WEIGHTS_FILE_NAME
    # the first job after the worker starts also compiles kernels for its batch shapes; the one
    # measured is the next, on other images (a cold feature cache), as on a service that is running
    # (other pixels: images made for the same class index are the same whatever the class is called)
    other = class_folder_zip(
        work / "birds.zip", classes=("bird", "fish"), per_class=args.per_class, size=(64, 50)
    )
    try:
        http = httpx.Client(base_url=url, timeout=120)

        def finetune(dataset: dict) -> tuple[dict, float]:
            started = time.perf_counter()
            job = http.post("/jobs", json={"dataset_id": dataset["id"], **spec}).json()
            wait_for(lambda: http.get(f"/jobs/{job['id']}").json()["status"] in ("succeeded", "failed"),
                     timeout=3600, interval=0.1)  # fmt: skip
            return http.get(f"/jobs/{job['id']}").json(), time.perf_counter() - started

        # the split of the local preparation that the naive fit below trains on
        dataset, first_dataset = (
            upload_and_wait(http, work, archive=path, fractions=(0.15, 0.15)) for path in (archive, other)
        )
        first_job, first_s = finetune(first_dataset)
        job, service_s = finetune(dataset)
        timelines = [phases(j, http.get(f"/jobs/{j['id']}/metrics").json()) for j in (job, first_job)]
    finally:
        up.stop()
    assert job["status"] == "succeeded" and first_job["status"] == "succeeded", (job, first_job)

    # (b) the naive fit on the same images (prepared the same way, locally)
    prepared = prepare_dataset(archive, work / "prepared", SplitFractions(0.15, 0.15))
    train_rows, val_rows = prepared.indices("train"), prepared.indices("val")
    parts = assemble(
        TrainSpec(**spec, precision="float32"), prepared.num_classes, prepared.preprocess, weights
    )
    inputs = keras.Input((227, 227, 3))
    naive = keras.Model(inputs, parts.model(keras.layers.RandomFlip("horizontal", seed=0)(inputs)))
    naive.compile(
        optimizer=keras.optimizers.SGD(0.001),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    images = np.asarray(prepared.images)
    started = time.perf_counter()
    naive.fit(images[train_rows], prepared.labels[train_rows], batch_size=args.batch_size,
              epochs=args.epochs, validation_data=(images[val_rows], prepared.labels[val_rows]),
              verbose=0)  # fmt: skip
    naive_s = time.perf_counter() - started

    precision = job["progress"].get("precision")
    print(f"{len(prepared)} images ({len(train_rows)} train), fc7+fc8, {args.epochs} epochs, flips, "
          f"batch {args.batch_size}; CPU: {os.cpu_count()} cores; computed in {precision}")  # fmt: skip
    print(f"(s) POST /jobs → succeeded:  {service_s:7.2f} s   (the worker's first job, other images: "
          f"{first_s:.2f} s)")  # fmt: skip
    for name, (start_up, queued, training, ending) in zip(("(s)", "first job"), timelines):
        print(
            f"    {name}: POST → first step {start_up:.2f} s (of which {queued:.2f} s queued until a "
            f"worker took it; then weights, features), training {training:.2f} s, "
            f"last validation → succeeded {ending:.2f} s (test, export)"
        )
    print(f"(b) naive Keras fit:         {naive_s:7.2f} s")
    print(f"s/b = {service_s / naive_s:.3f}   (goal <= 0.2)")


def phases(job: dict, metrics: dict) -> tuple[float, float, float, float]:
    """From a job's own timestamps: POST → first step, of it queued, the training, the ending."""
    first, last = metrics["train"][0]["time"], metrics["train"][-1]["time"]
    return (
        seconds_between(job["created_at"], first),
        seconds_between(job["created_at"], job["started_at"]),
        seconds_between(first, last),
        seconds_between(metrics["val"][-1]["time"], job["finished_at"]),
    )


if __name__ == "__main__":
    main()
