"""The finetuning loop: cached frozen prefix, exact resume, per-class validation, best-epoch export."""

from __future__ import annotations

import math
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import tensorflow as tf

from model.assembly import assemble, configure_devices, make_optimizer
from model.checkpoint import load_checkpoint, save_checkpoint
from model.dataset import PreparedDataset
from model.export import export_model
from model.features import Cancelled, FeatureCache
from model.metrics import evaluate_logits
from model.reports import (
    EpochReport,
    RunInfo,
    StepReport,
    TestReport,
    TrainingDiverged,
    TrainingObserver,
    TrainResult,
)
from model.spec import TrainSpec
from model.weights import Weights, apply_weights, read_weights, save_weights

EVAL_BATCH = 256


def train(
    spec: TrainSpec,
    dataset: PreparedDataset,
    run_dir: str | Path,
    *,
    imagenet_weights: str | Path | None = None,
    cache_dir: str | Path | None = None,
    observer: TrainingObserver | None = None,
) -> TrainResult:
    """Finetune on `dataset`, writing checkpoints, TensorBoard events and the export into `run_dir`.

    If `run_dir` holds a checkpoint of this run, training resumes from it (same data order, same
    dropout draws). `observer.should_stop()` is honoured within one step: the position is
    checkpointed and the result's status is `cancelled`.
    """
    observer = observer or TrainingObserver()
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    configure_devices()
    parts = assemble(spec, dataset.num_classes, dataset.preprocess, imagenet_weights)
    train_rows, val_rows, test_rows = (dataset.indices(name) for name in ("train", "val", "test"))
    batches = _Batches(dataset)
    if parts.prefix is not None:
        cache = FeatureCache(cache_dir or run_dir / "features")
        key = cache.key(dataset.fingerprint, parts.prefix, parts.prefix.layers[-1].name)
        try:
            batches.plain, batches.flipped = cache.features(
                key,
                dataset.images,
                parts.prefix,
                train_rows if spec.augment_flip else None,
                should_stop=observer.should_stop,
                progress=lambda d, t: observer.on_phase("features", d, t),
            )
        except Cancelled:
            return TrainResult("cancelled", 0, None, None, None)
        batches.cached = True

    net = parts.head
    optimizer = make_optimizer(spec)
    train_vars = net.trainable_variables
    optimizer.build(train_vars)
    state_vars = list(net.variables) + list(optimizer.variables)
    checkpoint_dir = run_dir / "checkpoint"
    state = load_checkpoint(checkpoint_dir, state_vars) or _fresh_state()
    steps_per_epoch = math.ceil(len(train_rows) / spec.batch_size)
    observer.on_start(
        RunInfo(
            spec.num_epochs,
            steps_per_epoch,
            len(train_rows),
            len(val_rows),
            len(test_rows),
            dataset.classes,
            "cached" if batches.cached else None,
            state["global_step"],
        )
    )

    @tf.function(jit_compile=spec.xla, reduce_retracing=True)
    def train_step(x, y):
        with tf.GradientTape() as tape:
            logits = tf.cast(net(x, training=True), tf.float32)
            loss = tf.reduce_mean(
                tf.keras.losses.sparse_categorical_crossentropy(y, logits, from_logits=True)
            )
            scaled = optimizer.scale_loss(loss) if spec.mixed_precision else loss
        grads = tape.gradient(scaled, train_vars)
        optimizer.apply(grads, train_vars)
        accuracy = tf.reduce_mean(
            tf.cast(tf.equal(tf.argmax(logits, 1, output_type=tf.int32), y), tf.float32)
        )
        return loss, accuracy, grads

    evaluate_forward = tf.function(
        lambda x: tf.cast(net(x, training=False), tf.float32), reduce_retracing=True
    )
    writers = {
        name: tf.summary.create_file_writer(str(run_dir / "tensorboard" / name))
        for name in ("train", "validation")
    }
    stopped_early = False
    grads = None
    for epoch in range(state["epoch"], spec.num_epochs + 1):
        order, flips = _epoch_order(spec, epoch, train_rows)
        for step_in_epoch in range(state["step_in_epoch"], steps_per_epoch):
            if observer.should_stop():
                save_checkpoint(
                    checkpoint_dir, state_vars, {**state, "epoch": epoch, "step_in_epoch": step_in_epoch}
                )
                return _result("cancelled", state)
            started = time.perf_counter()
            rows = order[step_in_epoch * spec.batch_size : (step_in_epoch + 1) * spec.batch_size]
            x = batches.train_batch(rows, flips[step_in_epoch * spec.batch_size :][: len(rows)])
            loss, accuracy, grads = train_step(tf.constant(x), tf.constant(dataset.labels[rows]))
            loss, accuracy = float(loss), float(accuracy)
            if not math.isfinite(loss):
                raise TrainingDiverged(
                    f"the loss became {loss} at epoch {epoch}, step {step_in_epoch + 1}; "
                    f"try a lower learning rate than {spec.learning_rate}"
                )
            state["global_step"] += 1
            state["loss_sum"] += loss * len(rows)
            state["correct_sum"] += accuracy * len(rows)
            state["seen"] += len(rows)
            elapsed = time.perf_counter() - started
            observer.on_step(
                StepReport(
                    epoch,
                    state["global_step"],
                    step_in_epoch + 1,
                    steps_per_epoch,
                    loss,
                    accuracy,
                    len(rows) / max(elapsed, 1e-9),
                    time.time(),
                )
            )
            with writers["train"].as_default(step=state["global_step"]):
                tf.summary.scalar("loss", loss)
                tf.summary.scalar("accuracy", accuracy)

        evaluation = _evaluate(evaluate_forward, batches, val_rows, dataset)
        is_best = state["best_epoch"] is None or evaluation.accuracy > state["best_val_accuracy"]
        if is_best:
            state.update(
                best_epoch=epoch, best_val_accuracy=evaluation.accuracy, best_val_loss=evaluation.loss
            )
            save_weights(_trained_weights(parts.model, spec), run_dir / "best_weights.npy")
        report = EpochReport(
            epoch,
            evaluation.loss,
            evaluation.accuracy,
            evaluation.per_class,
            evaluation.confusion_matrix,
            state["loss_sum"] / max(state["seen"], 1),
            state["correct_sum"] / max(state["seen"], 1),
            is_best,
            time.time(),
        )
        state["history"].append(
            {k: v for k, v in asdict(report).items() if k not in ("per_class", "confusion_matrix")}
        )
        _write_epoch_summaries(writers, report, train_vars, grads, epoch)
        state.update(epoch=epoch + 1, step_in_epoch=0, loss_sum=0.0, correct_sum=0.0, seen=0)
        save_checkpoint(checkpoint_dir, state_vars, state)
        observer.on_epoch(report)
        patience = spec.early_stopping_patience
        if patience and epoch - state["best_epoch"] >= patience:
            stopped_early = True
            break

    result = _result("succeeded", state, stopped_early=stopped_early)
    best = read_weights(run_dir / "best_weights.npy")
    apply_weights(parts.model, best, list(best))
    if len(test_rows):
        test = _evaluate(evaluate_forward, batches, test_rows, dataset)
        result.test = TestReport(test.loss, test.accuracy, test.per_class, test.confusion_matrix)
        observer.on_test(result.test)
    result.export_dir = str(
        export_model(
            parts.model,
            run_dir / "export",
            dataset.classes,
            dataset.preprocess,
            spec,
            {
                "best_epoch": result.best_epoch,
                "best_val_accuracy": result.best_val_accuracy,
                "best_val_loss": result.best_val_loss,
                "test": asdict(result.test) if result.test else None,
                "history": result.history,
            },
        )
    )
    return result


class _Batches:
    """Assembles batches from the cached features, or from the images when nothing is cached."""

    def __init__(self, dataset: PreparedDataset):
        self.images = dataset.images
        self.plain: np.ndarray | None = None
        self.flipped: np.ndarray | None = None
        self.cached = False

    def train_batch(self, rows: np.ndarray, flips: np.ndarray) -> np.ndarray:
        if self.cached:
            x = np.asarray(self.plain[rows])
            if self.flipped is not None and flips.any():
                x[flips] = self.flipped[rows[flips]]
            return x
        x = np.asarray(self.images[rows])
        x[flips] = x[flips][:, :, ::-1, :]
        return x

    def eval_batch(self, rows: np.ndarray) -> np.ndarray:
        return np.asarray((self.plain if self.cached else self.images)[rows])


def _epoch_order(spec: TrainSpec, epoch: int, train_rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The data order of an epoch depends only on (seed, epoch): a resumed run sees the same."""
    rng = np.random.default_rng([spec.seed, epoch])
    order = rng.permutation(train_rows)
    flips = rng.random(len(order)) < 0.5 if spec.augment_flip else np.zeros(len(order), dtype=bool)
    return order, flips


def _evaluate(forward, batches: _Batches, rows: np.ndarray, dataset: PreparedDataset):
    logits = [
        forward(tf.constant(batches.eval_batch(rows[i : i + EVAL_BATCH]))).numpy()
        for i in range(0, len(rows), EVAL_BATCH)
    ]
    logits = np.concatenate(logits) if logits else np.zeros((0, dataset.num_classes), np.float32)
    return evaluate_logits(logits, dataset.labels[rows], dataset.classes)


def _trained_weights(model, spec: TrainSpec) -> Weights:
    """Only the trained layers change, so only they are kept for the best epoch."""
    return {
        name: tuple(np.asarray(v) for v in model.get_layer(name).get_weights()) for name in spec.train_layers
    }


def _fresh_state() -> dict:
    return {
        "epoch": 1,
        "step_in_epoch": 0,
        "global_step": 0,
        "loss_sum": 0.0,
        "correct_sum": 0.0,
        "seen": 0,
        "best_epoch": None,
        "best_val_accuracy": None,
        "best_val_loss": None,
        "history": [],
    }


def _result(status: str, state: dict, stopped_early: bool = False) -> TrainResult:
    return TrainResult(
        status,
        len(state["history"]),
        state["best_epoch"],
        state["best_val_accuracy"],
        state["best_val_loss"],
        stopped_early=stopped_early,
        history=list(state["history"]),
    )


def _write_epoch_summaries(writers, report: EpochReport, train_vars, grads, epoch: int) -> None:
    with writers["validation"].as_default(step=epoch):
        tf.summary.scalar("epoch_loss", report.loss)
        tf.summary.scalar("epoch_accuracy", report.accuracy)
    with writers["train"].as_default(step=epoch):
        tf.summary.scalar("epoch_loss", report.train_loss)
        tf.summary.scalar("epoch_accuracy", report.train_accuracy)
        for variable in train_vars:
            tf.summary.histogram(variable.path, _histogram_sample(variable))
        for variable, grad in zip(train_vars, grads or []):
            if grad is not None:
                tf.summary.histogram(f"{variable.path}/gradient", _histogram_sample(grad))
        writers["train"].flush()
        writers["validation"].flush()


def _histogram_sample(tensor, limit: int = 8192) -> tf.Tensor:
    """An evenly strided sample: TensorBoard's histogram op takes seconds on fc7's 16M values."""
    flat = tf.reshape(tensor, [-1])
    return tf.cast(flat[:: max(1, int(flat.shape[0]) // limit)], tf.float32)
