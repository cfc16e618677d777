"""The finetuning loop: cached frozen prefix, exact resume, per-class validation, best-epoch export."""

from __future__ import annotations

import gc
import json
import math
import os
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import tensorflow as tf

from model.data.batches import Batches, epoch_order
from model.data.dataset import PreparedDataset
from model.exports.export import finish_export, stage_export, staged_export
from model.exports.predictions import save_predictions, top_predictions
from model.exports.weights import Weights, apply_weights, read_export_weights, read_weights, save_weights
from model.training.assembly import assemble, configure_devices
from model.training.checkpoint import (
    check_same_run,
    check_same_start,
    load_checkpoint,
    read_state,
    save_checkpoint,
)
from model.training.features import Cancelled, FeatureCache
from model.training.metrics import evaluate_logits
from model.training.optimizers import make_optimizer
from model.training.reports import (
    EpochReport,
    RunInfo,
    StepReport,
    TestReport,
    TrainingDiverged,
    TrainingObserver,
    TrainResult,
)
from model.training.spec import TrainSpec
from model.training.summaries import EventWriter, histogram_sample, write_epoch_summaries

EVAL_BATCH = 256
RESULT_FILE = "result.json"
BEST_WEIGHTS_FILE = "best_weights.npz"
CHECKPOINT_DIR = "checkpoint"
_runs_in_process = 0


def train(
    spec: TrainSpec,
    dataset: PreparedDataset,
    run_dir: str | Path,
    *,
    imagenet_weights: str | Path | None = None,
    start_weights: str | Path | None = None,
    cache_dir: str | Path | None = None,
    cache_max_bytes: int | None = None,
    observer: TrainingObserver | None = None,
    checkpoint_seconds: float = 60.0,
) -> TrainResult:
    """Finetune on `dataset`, writing checkpoints, TensorBoard events and the export into `run_dir`.

    If `run_dir` holds a checkpoint of this run (same spec, same data), training resumes from it
    (same data order, same dropout draws); a finished run returns its stored result; a checkpoint
    of another run raises `CheckpointMismatch`. `observer.should_stop()` is honoured within one
    step: the position is checkpointed and the result's status is `cancelled`.

    `start_weights` is where this host finds the weights `spec.weights` names (a service's
    `job:<id>`); the spec, the checkpoint and the export keep the name, so another host that sees
    the same files at another path resumes the run. A resume also checks that the frozen layers'
    weights are the ones the run started from.

    `checkpoint_seconds` 0 checkpoints after every epoch; above 0, at most that often, after any
    step (plus at a stop and after the last epoch). Resume is exact from any of them: the data order
    and dropout draws are functions of the position. The best epoch's weights are written with the
    checkpoint that first records it (not at every new best: 67 MB for fc7+fc8 each time); the
    checkpoint after the last epoch follows the export's SavedModel, which holds them.
    """
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    saved_state = read_state(run_dir / CHECKPOINT_DIR)
    check_same_run(saved_state, spec.model_dump(mode="json"), dataset.fingerprint, run_dir)
    if saved_state and (run_dir / RESULT_FILE).is_file():
        return _stored_result(run_dir)
    run = _Run(spec, dataset, run_dir, observer or TrainingObserver(), checkpoint_seconds)
    run.set_up(imagenet_weights, start_weights, saved_state)
    if not run.cache_features(cache_dir, cache_max_bytes):
        return TrainResult("cancelled", 0, None, None, None)
    run.resume()
    for epoch in range(run.state["epoch"], spec.num_epochs + 1):
        if run.state["stopped_early"]:
            break
        if not run.train_epoch(epoch):
            return _result("cancelled", run.state)
        run.end_epoch(epoch)
    return run.finish()


class _Run:
    """One call of `train`: the network, the optimizer and the position its steps share."""

    def __init__(self, spec, dataset, run_dir: Path, observer: TrainingObserver, checkpoint_seconds):
        self.spec, self.dataset, self.run_dir, self.observer = spec, dataset, run_dir, observer
        self.checkpoint_seconds = checkpoint_seconds
        self.checkpoint_dir = run_dir / CHECKPOINT_DIR
        self.rows = {name: dataset.indices(name) for name in ("train", "val", "test")}
        self.batches = Batches(dataset)
        self.last_saved = time.monotonic()
        self.best_weights: Weights | None = None  # of the best epoch in this process (None after a resume)
        self.best_saved = True  # whether the file holds them
        self.grad_samples = None

    def set_up(self, imagenet_weights, start_weights, saved_state: dict | None) -> None:
        """The network from its start weights, which must be those a resumed run started from."""
        _free_earlier_runs()
        configure_devices()
        self.parts = assemble(
            self.spec, self.dataset.num_classes, self.dataset.preprocess, imagenet_weights, start_weights
        )
        check_same_start(saved_state, self.parts.prefix_fingerprint, self.run_dir)

    def cache_features(self, cache_dir, cache_max_bytes) -> bool:
        """The frozen prefix's outputs, computed once per image (and flip); False when cancelled."""
        prefix, dataset = self.parts.prefix, self.dataset
        if prefix is None:
            return True
        cache = FeatureCache(cache_dir or self.run_dir / "features", cache_max_bytes)
        key = cache.key(
            dataset.fingerprint,
            self.parts.prefix_fingerprint,
            prefix.layers[-1].name,
            policy=self.spec.dtype_policy,
            preprocess=dataset.preprocess.to_json(),
        )
        try:
            self.batches.plain, self.batches.flipped = cache.features(
                key,
                dataset.images,
                prefix,
                self.rows["train"] if self.spec.augment_flip else None,
                should_stop=self.observer.should_stop,
                progress=lambda done, total: self.observer.on_phase("features", done, total),
                dataset_fingerprint=dataset.fingerprint,
            )
        except Cancelled:
            return False
        self.batches.cached = True
        return True

    def resume(self) -> None:
        """The optimizer and the position: from the checkpoint, or fresh; then the traced steps."""
        spec, dataset, net = self.spec, self.dataset, self.parts.head
        self.steps_per_epoch = math.ceil(len(self.rows["train"]) / spec.batch_size)
        self.optimizer = make_optimizer(spec, self.steps_per_epoch)
        self.train_vars = net.trainable_variables
        self.optimizer.build(self.train_vars)
        self.state_vars = list(net.variables) + list(self.optimizer.variables)
        self.state = load_checkpoint(self.checkpoint_dir, self.state_vars) or _fresh_state(
            spec.model_dump(mode="json"), dataset.fingerprint, self.parts.prefix_fingerprint
        )
        self.resumed_after_training = bool(self.state.get("training_done"))
        loss_of = image_losses(spec, dataset.labels[self.rows["train"]], dataset.num_classes)
        self.train_step, self.forward = _traced_steps(spec, net, self.optimizer, self.batches, loss_of)
        self.writers = {
            name: EventWriter(self.run_dir / "tensorboard" / name) for name in ("train", "validation")
        }
        self.observer.on_start(self._run_info())

    def _run_info(self) -> RunInfo:
        state, rows = self.state, self.rows
        return RunInfo(
            self.spec.num_epochs,
            self.steps_per_epoch,
            *(len(rows[name]) for name in ("train", "val", "test")),
            self.dataset.classes,
            "cached" if self.batches.cached else None,
            state["global_step"],
            resumed_at=(state["epoch"], state["step_in_epoch"]) if state["global_step"] else None,
            precision=self.spec.compute_precision,
        )

    def train_epoch(self, epoch: int) -> bool:
        """The epoch's remaining steps; False when stopped (the position is checkpointed)."""
        order, flips = epoch_order(self.spec.seed, epoch, self.rows["train"], self.spec.augment_flip)
        for step_in_epoch in range(self.state["step_in_epoch"], self.steps_per_epoch):
            if self.observer.should_stop():
                self.state.update(epoch=epoch, step_in_epoch=step_in_epoch)
                self._checkpoint(self.state)
                return False
            self._step(epoch, step_in_epoch, order, flips)
            if self.checkpoint_seconds and step_in_epoch + 1 < self.steps_per_epoch:
                self._save_if_due({**self.state, "epoch": epoch, "step_in_epoch": step_in_epoch + 1})
        return True

    def _step(self, epoch: int, step_in_epoch: int, order: np.ndarray, flips: np.ndarray) -> None:
        spec, state = self.spec, self.state
        started = time.perf_counter()
        batch = slice(step_in_epoch * spec.batch_size, (step_in_epoch + 1) * spec.batch_size)
        rows = order[batch]
        x = self.batches.train_batch(rows, flips[batch])
        loss, accuracy, grad_norm, self.grad_samples = self.train_step(
            tf.constant(x), tf.constant(self.dataset.labels[rows])
        )
        loss, accuracy, grad_norm = float(loss), float(accuracy), float(grad_norm)
        if not (math.isfinite(loss) and math.isfinite(grad_norm)):
            raise TrainingDiverged(
                f"training diverged at epoch {epoch}, step {step_in_epoch + 1}: loss {loss}, "
                f"gradient norm {grad_norm}; try a lower learning rate than {spec.learning_rate}"
            )
        state["global_step"] += 1
        state["loss_sum"] += loss * len(rows)
        state["correct_sum"] += accuracy * len(rows)
        state["seen"] += len(rows)
        images_per_second = len(rows) / max(time.perf_counter() - started, 1e-9)
        self.observer.on_step(
            StepReport(
                epoch,
                state["global_step"],
                step_in_epoch + 1,
                self.steps_per_epoch,
                loss,
                accuracy,
                images_per_second,
                time.time(),
            )
        )
        rate = float(self.optimizer.learning_rate)
        self.writers["train"].scalars(state["global_step"], loss=loss, accuracy=accuracy, learning_rate=rate)

    def end_epoch(self, epoch: int) -> None:
        """Validate, keep the best epoch's weights and predictions, decide on early stopping."""
        state, spec, val_rows = self.state, self.spec, self.rows["val"]
        evaluation, logits = _evaluate(self.forward, self.batches, val_rows, self.dataset)
        is_best = _better(evaluation, state)
        if is_best:
            state.update(
                best_epoch=epoch, best_val_accuracy=evaluation.accuracy, best_val_loss=evaluation.loss
            )
            self.best_weights, self.best_saved = _trained_weights(self.parts.model, spec), False
            labels = self.dataset.labels[val_rows]
            save_predictions(self.run_dir, "val", top_predictions(logits, val_rows, labels))
        seen = max(state["seen"], 1)
        report = EpochReport(
            epoch,
            evaluation.loss,
            evaluation.accuracy,
            evaluation.per_class,
            evaluation.confusion_matrix,
            state["loss_sum"] / seen,
            state["correct_sum"] / seen,
            is_best,
            time.time(),
        )
        state["history"].append(
            {k: v for k, v in asdict(report).items() if k not in ("per_class", "confusion_matrix")}
        )
        write_epoch_summaries(self.writers, report, self.train_vars, self.grad_samples, epoch)
        patience = spec.early_stopping_patience
        state.update(epoch=epoch + 1, step_in_epoch=0, loss_sum=0.0, correct_sum=0.0, seen=0)
        state["stopped_early"] = bool(patience and epoch - state["best_epoch"] >= patience)
        if epoch < spec.num_epochs and not state["stopped_early"]:  # the last one's follows the export
            self._save_if_due(state, force=not self.checkpoint_seconds)
        self.observer.on_epoch(report)

    def finish(self) -> TrainResult:
        """The best epoch's weights into the export, the test evaluation, and the stored result."""
        result = _result("succeeded", self.state)
        export_dir = self.run_dir / "export"
        self._stage_best_export(export_dir)
        test_rows = self.rows["test"]
        if len(test_rows):
            test, logits = _evaluate(self.forward, self.batches, test_rows, self.dataset)
            labels = self.dataset.labels[test_rows]
            save_predictions(self.run_dir, "test", top_predictions(logits, test_rows, labels))
            result.test = TestReport(test.loss, test.accuracy, test.per_class, test.confusion_matrix)
            self.observer.on_test(result.test)
        metrics = {
            "precision": self.spec.compute_precision,
            "best_epoch": result.best_epoch,
            "best_val_accuracy": result.best_val_accuracy,
            "best_val_loss": result.best_val_loss,
            "test": asdict(result.test) if result.test else None,
            "history": result.history,
        }
        dataset = self.dataset
        export = finish_export(export_dir, dataset.classes, dataset.preprocess, self.spec, metrics)
        result.export_dir = str(export)
        _store_result(self.run_dir, result)
        (self.run_dir / BEST_WEIGHTS_FILE).unlink(
            missing_ok=True
        )  # a checkpoint's copy: the export holds them
        return result

    def _stage_best_export(self, export_dir: Path) -> None:
        """The SavedModel first, then the checkpoint after the last epoch, which names it for the
        best weights; the variables and optimizer state (134 MB for fc7+fc8 with momentum) are not
        written again: what follows (test, export) needs only the best weights."""
        if self.resumed_after_training:
            best = _best_weights_on_disk(self.run_dir, export_dir, self.spec.train_layers)
        elif self.best_weights is not None:
            best = self.best_weights
        else:  # the best epoch came before this process resumed
            best = read_weights(self.run_dir / BEST_WEIGHTS_FILE)
        apply_weights(self.parts.model, best, list(best))
        if self.resumed_after_training and staged_export(export_dir):
            return
        stage_export(self.parts.model, export_dir, self.dataset.preprocess, shared=self.parts.frozen_layers())
        save_checkpoint(self.checkpoint_dir, [], {**self.state, "training_done": True})

    def _checkpoint(self, position: dict) -> None:
        if not self.best_saved:  # first: the checkpoint's best epoch must be the one on disk
            save_weights(self.best_weights, self.run_dir / BEST_WEIGHTS_FILE, fingerprinted=False)
            self.best_saved = True
        save_checkpoint(self.checkpoint_dir, self.state_vars, {**position, "training_done": False})
        self.last_saved = time.monotonic()

    def _save_if_due(self, position: dict, force: bool = False) -> None:
        if force or time.monotonic() - self.last_saved >= self.checkpoint_seconds:
            self._checkpoint(position)


def _traced_steps(spec: TrainSpec, net, optimizer, batches: Batches, loss_of):
    """The train step and the evaluation forward pass, each traced once for any batch size (the
    smaller last batch of an epoch reuses the trace)."""
    shape, dtype = batches.example()
    any_x = tf.TensorSpec((None, *shape), dtype)
    train_vars = net.trainable_variables

    @tf.function(
        jit_compile=spec.xla, input_signature=[any_x, tf.TensorSpec((None,), tf.int32)], autograph=False
    )
    def train_step(x, y):
        with tf.GradientTape() as tape:
            logits = tf.cast(net(x, training=True), tf.float32)
            loss = tf.reduce_mean(loss_of(y, logits))
            scaled = optimizer.scale_loss(loss) if spec.loss_scaling else loss
        grads = tape.gradient(scaled, train_vars)
        # Under loss scaling an overflowing gradient is skipped by the optimizer, not a divergence.
        # The weights are not checked: finite weights stay finite under an update whose gradient
        # norm is finite, and a pass over fc7's 16.7M weights would cost a sizeable share of a step.
        grad_norm = tf.constant(0.0) if spec.loss_scaling else tf.linalg.global_norm(grads)
        optimizer.apply(grads, train_vars)
        predicted = tf.argmax(logits, 1, output_type=tf.int32)
        accuracy = tf.reduce_mean(tf.cast(tf.equal(predicted, y), tf.float32))
        return loss, accuracy, grad_norm, [None if g is None else histogram_sample(g) for g in grads]

    forward = tf.function(
        lambda x: tf.cast(net(x, training=False), tf.float32), input_signature=[any_x], autograph=False
    )
    return train_step, forward


def _best_weights_on_disk(run_dir: Path, export_dir: Path, layers) -> Weights:
    """The best epoch's weights of a run resumed after its last epoch: in its staged export, or
    its finished one if the process stopped after finishing it. A checkpoint written before
    exports were staged first names the file they were written to."""
    finished = export_dir if (export_dir / "saved_model").is_dir() else None
    source = staged_export(export_dir) or finished
    if source is not None:
        return read_export_weights(source, layers)
    return read_weights(run_dir / BEST_WEIGHTS_FILE)


def _free_earlier_runs() -> None:
    """A run's network, optimizer and traced functions hold one another in reference cycles, which
    only a full collection frees: a process training run after run (a worker) grew by each run's
    buffers until Python's next full collection, and the next run's buffers landed on cold memory.
    Collected here, before this run allocates; the worker freezes TensorFlow's own objects at start
    (`warm_up`), so the collection only walks what the runs made."""
    global _runs_in_process
    if _runs_in_process:
        gc.collect()
    _runs_in_process += 1


def image_losses(spec: TrainSpec, train_labels: np.ndarray, num_classes: int):
    """Per-image training loss: cross-entropy, with label smoothing and class weights if asked.
    (Validation and test losses are always the plain cross-entropy, comparable across runs.)"""
    weights = None
    if spec.class_weight == "balanced":
        counts = np.bincount(train_labels, minlength=num_classes)
        weights = tf.constant(len(train_labels) / (num_classes * np.maximum(counts, 1)), tf.float32)

    def loss_of(y, logits):
        if spec.label_smoothing:
            targets = tf.one_hot(y, num_classes)
            per_image = tf.keras.losses.categorical_crossentropy(
                targets, logits, from_logits=True, label_smoothing=spec.label_smoothing
            )
        else:
            per_image = tf.keras.losses.sparse_categorical_crossentropy(y, logits, from_logits=True)
        return per_image if weights is None else per_image * tf.gather(weights, y)

    return loss_of


def _better(evaluation, state: dict) -> bool:
    """Higher validation accuracy wins; a tie goes to the lower validation loss."""
    if state["best_epoch"] is None or evaluation.accuracy > state["best_val_accuracy"]:
        return True
    return evaluation.accuracy == state["best_val_accuracy"] and evaluation.loss < state["best_val_loss"]


def _evaluate(forward, batches: Batches, rows: np.ndarray, dataset: PreparedDataset):
    logits = [
        forward(tf.constant(batches.eval_batch(rows[i : i + EVAL_BATCH]))).numpy()
        for i in range(0, len(rows), EVAL_BATCH)
    ]
    logits = np.concatenate(logits) if logits else np.zeros((0, dataset.num_classes), np.float32)
    return evaluate_logits(logits, dataset.labels[rows], dataset.classes), logits


def _trained_weights(model, spec: TrainSpec) -> Weights:
    """Only the trained layers change, so only they are kept for the best epoch: as tensors, which
    share the variables' memory until the next update writes them (no 67 MB copy per new best)."""
    return {
        name: tuple(tf.identity(v.value) for v in model.get_layer(name).weights) for name in spec.train_layers
    }


def _fresh_state(spec_json: dict, dataset_fingerprint: str, start_fingerprint: str | None) -> dict:
    return {
        "start": start_fingerprint,
        "epoch": 1,
        "step_in_epoch": 0,
        "global_step": 0,
        "loss_sum": 0.0,
        "correct_sum": 0.0,
        "seen": 0,
        "best_epoch": None,
        "best_val_accuracy": None,
        "best_val_loss": None,
        "stopped_early": False,
        "history": [],
        "spec": spec_json,
        "dataset": dataset_fingerprint,
    }


def _result(status: str, state: dict) -> TrainResult:
    return TrainResult(
        status,
        len(state["history"]),
        state["best_epoch"],
        state["best_val_accuracy"],
        state["best_val_loss"],
        stopped_early=bool(state.get("stopped_early")),
        history=list(state["history"]),
    )


def _store_result(run_dir: Path, result: TrainResult) -> None:
    """Without `export_dir`: the run folder may be read at another path (another host's mount)."""
    tmp = run_dir / (RESULT_FILE + ".tmp")
    tmp.write_text(json.dumps({**asdict(result), "export_dir": None}))
    os.replace(tmp, run_dir / RESULT_FILE)


def _stored_result(run_dir: Path) -> TrainResult:
    data = json.loads((run_dir / RESULT_FILE).read_text())
    test = data.pop("test", None)
    data.pop("already_finished", None)
    data["export_dir"] = str(run_dir / "export")
    return TrainResult(**data, test=TestReport(**test) if test else None, already_finished=True)
