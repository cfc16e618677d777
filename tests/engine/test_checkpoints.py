"""Checkpoints by time: fewer writes, and a crash resumes exactly from whichever one exists."""

import numpy as np
import pytest

from model.training.loop import train
from model.training.spec import TrainSpec
from tests.engine.test_training import Recorder, exported

SPEC = TrainSpec(num_epochs=3, batch_size=8, learning_rate=0.01)  # 3 steps per epoch


class Crash(Exception):
    pass


class CrashAt(Recorder):
    def __init__(self, step: int):
        super().__init__()
        self.crash_step = step

    def on_step(self, report):
        if report.step == self.crash_step:
            raise Crash()
        super().on_step(report)


@pytest.fixture(scope="module")
def whole(dataset, weights_file, tmp_path_factory):
    run = tmp_path_factory.mktemp("whole")
    recorder = Recorder()
    train(SPEC, dataset, run, imagenet_weights=weights_file, cache_dir=run / "c", observer=recorder)
    return [s.loss for s in recorder.steps], exported(run)


@pytest.mark.parametrize(
    ("seconds", "resumes_from"),
    [(1e-9, 7), (1e9, 0), (0.0, 6)],  # after every step; not before the end; after every epoch
)
def test_a_crash_resumes_exactly_from_the_last_checkpoint(dataset, weights_file, tmp_path, whole, seconds,
                                                          resumes_from):  # fmt: skip
    crashed = CrashAt(step=8)  # in epoch 3
    with pytest.raises(Crash):
        train(SPEC, dataset, tmp_path, imagenet_weights=weights_file, cache_dir=tmp_path / "c",
              observer=crashed, checkpoint_seconds=seconds)  # fmt: skip
    again = Recorder()
    result = train(SPEC, dataset, tmp_path, imagenet_weights=weights_file, cache_dir=tmp_path / "c",
                   observer=again, checkpoint_seconds=seconds)  # fmt: skip
    assert result.status == "succeeded" and again.info.resumed_from_step == resumes_from
    losses = [s.loss for s in crashed.steps[: again.info.resumed_from_step]] + [s.loss for s in again.steps]
    assert np.allclose(losses, whole[0], rtol=1e-5, atol=1e-6)
    assert np.allclose(exported(tmp_path)["fc8"][0], whole[1]["fc8"][0], atol=1e-6)


def test_the_best_epochs_weights_are_written_with_the_checkpoint_that_records_it(dataset, weights_file,
                                                                                 tmp_path):  # fmt: skip
    """Kept in memory at each new best, written once a checkpoint names that epoch (here: the stop)."""
    from model.exports.weights import read_weights
    from model.training.checkpoint import read_state

    one_epoch = SPEC.model_copy(update={"num_epochs": 1})
    train(one_epoch, dataset, tmp_path / "one", imagenet_weights=weights_file, cache_dir=tmp_path / "c")
    stopped = Recorder(stop_at_step=3)  # after epoch 1, before a step of epoch 2
    result = train(SPEC, dataset, tmp_path / "run", imagenet_weights=weights_file, cache_dir=tmp_path / "c",
                   observer=stopped, checkpoint_seconds=1e9)  # fmt: skip
    assert result.status == "cancelled" and read_state(tmp_path / "run" / "checkpoint")["best_epoch"] == 1
    best = read_weights(tmp_path / "run" / "best_weights.npz")
    assert np.array_equal(best["fc8"][0], exported(tmp_path / "one")["fc8"][0])


def test_the_export_holds_the_best_epoch_not_the_last(dataset, weights_file, tmp_path, monkeypatch):
    """The best epoch's weights go from memory into the export (no read back of the file)."""
    import model.training.loop

    one_epoch = SPEC.model_copy(update={"num_epochs": 1})
    train(one_epoch, dataset, tmp_path / "one", imagenet_weights=weights_file, cache_dir=tmp_path / "c")
    monkeypatch.setattr(model.training.loop, "_better", lambda evaluation, state: state["best_epoch"] is None)
    result = train(SPEC, dataset, tmp_path / "run", imagenet_weights=weights_file, cache_dir=tmp_path / "c")
    assert result.best_epoch == 1 and result.epochs_completed == 3
    assert np.array_equal(exported(tmp_path / "run")["fc8"][0], exported(tmp_path / "one")["fc8"][0])


class CrashInTest(Recorder):
    def on_test(self, report):
        raise Crash()


def test_the_checkpoint_after_the_last_epoch_holds_no_variables(dataset, weights_file, tmp_path, whole):
    """The checkpoint after the last epoch writes no variables (nothing trains after it), and no
    best weights of its own: it follows the export's SavedModel, which holds them (fc7 and fc8 were
    written twice per job). A crash in the test evaluation resumes into it and exports what an
    uninterrupted run exports."""
    from model.training.checkpoint import VARIABLES_FILE, read_state

    with pytest.raises(Crash):
        train(SPEC, dataset, tmp_path, imagenet_weights=weights_file, cache_dir=tmp_path / "c",
              observer=CrashInTest())  # fmt: skip
    assert read_state(tmp_path / "checkpoint")["training_done"]
    assert not (tmp_path / "checkpoint" / VARIABLES_FILE).exists()
    assert not (tmp_path / "best_weights.npz").exists()
    again = Recorder()
    result = train(
        SPEC, dataset, tmp_path, imagenet_weights=weights_file, cache_dir=tmp_path / "c", observer=again
    )
    assert result.status == "succeeded" and again.steps == [] and len(again.tests) == 1
    assert np.allclose(exported(tmp_path)["fc8"][0], whole[1]["fc8"][0], atol=1e-6)


@pytest.mark.parametrize("left", ["best weights file", "finished export"])
def test_a_run_stopped_after_its_last_epoch_finds_its_best_weights_where_they_were_left(
    dataset, weights_file, tmp_path, whole, left
):
    """A checkpoint after the last epoch written before exports were staged first (an upgrade
    with a job in flight) named a best-weights file; a process that stopped after finishing the
    export, before storing the result, left no staged export. Both resume to the same export."""
    import shutil

    from model.exports.export import staged_export
    from model.exports.weights import read_export_weights, save_weights

    with pytest.raises(Crash):
        train(SPEC, dataset, tmp_path, imagenet_weights=weights_file, cache_dir=tmp_path / "c",
              observer=CrashInTest())  # fmt: skip
    staged = staged_export(tmp_path / "export")
    if left == "best weights file":
        save_weights(read_export_weights(staged, SPEC.train_layers), tmp_path / "best_weights.npz")
        shutil.rmtree(staged)
    else:
        shutil.move(staged, tmp_path / "export")
    result = train(SPEC, dataset, tmp_path, imagenet_weights=weights_file, cache_dir=tmp_path / "c")
    assert result.status == "succeeded" and not (tmp_path / "best_weights.npz").exists()
    assert np.allclose(exported(tmp_path)["fc8"][0], whole[1]["fc8"][0], atol=1e-6)


def test_a_resume_refuses_frozen_weights_other_than_those_the_run_started_from(dataset, tmp_path):
    """The frozen layers are not in a checkpoint: a weights file reinstalled with other values
    between a stop and its resume would be mixed in silently. The run names the problem instead."""
    from model.exports.weights import write_synthetic_weights
    from model.training.checkpoint import CheckpointMismatch

    installed = write_synthetic_weights(tmp_path / "bvlc_alexnet.npz", seed=0)
    spec = TrainSpec(num_epochs=2, batch_size=8)
    stopped = train(
        spec, dataset, tmp_path / "run", imagenet_weights=installed, observer=Recorder(stop_at_step=1)
    )
    assert stopped.status == "cancelled"
    write_synthetic_weights(installed, seed=1)
    with pytest.raises(CheckpointMismatch, match="started from other weights than those installed now"):
        train(spec, dataset, tmp_path / "run", imagenet_weights=installed)
    write_synthetic_weights(installed, seed=0)  # the same values again: the run goes on
    assert train(spec, dataset, tmp_path / "run", imagenet_weights=installed).status == "succeeded"
