"""Training checkpoints: every variable of the trained network and of its optimizer (the dropout
seed state included), plus the loop's position, so a resumed run continues as if never stopped."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np

STATE_FILE = "state.json"


class CheckpointMismatch(ValueError):
    """The folder holds a checkpoint of a different run (other layers, optimizer or classes)."""


VARIABLES_FILE = "variables.npz"


def discard_checkpoint(directory: Path) -> None:
    """Remove a finished run's checkpoint (the export and the best weights stay)."""
    for path in (
        directory,
        directory.with_name(directory.name + ".old"),
        directory.with_name(directory.name + ".tmp"),
    ):
        shutil.rmtree(path, ignore_errors=True)


def save_checkpoint(directory: Path, variables: list, state: dict) -> None:
    """Write atomically: the new checkpoint replaces the old only once it is complete."""
    directory.parent.mkdir(parents=True, exist_ok=True)
    work = directory.with_name(directory.name + ".tmp")
    shutil.rmtree(work, ignore_errors=True)  # what a crash mid-write left
    work.mkdir(parents=True)
    if variables:
        with open(work / VARIABLES_FILE, "wb") as fh:
            np.savez(fh, *[np.asarray(v) for v in variables])
    (work / STATE_FILE).write_text(json.dumps(state))
    old = directory.with_name(directory.name + ".old")
    if directory.exists():
        os.replace(directory, old)
    os.replace(work, directory)
    if old.exists():
        for child in old.iterdir():
            child.unlink()
        old.rmdir()


def _existing(directory: Path) -> Path | None:
    if (directory / STATE_FILE).is_file():
        return directory
    old = directory.with_name(directory.name + ".old")
    return old if (old / STATE_FILE).is_file() else None  # a crash between the two renames


def read_state(directory: Path) -> dict | None:
    """The saved loop state alone (cheap: no variables are read), or None without a checkpoint."""
    found = _existing(directory)
    return json.loads((found / STATE_FILE).read_text()) if found else None


def check_same_run(state: dict | None, spec: dict, dataset_fingerprint: str, where: Path) -> None:
    """A checkpoint resumes only the run that wrote it: same options, same data."""
    if not state:
        return
    saved = _with_current_defaults(state.get("spec"))
    if saved is not None and saved != spec:
        changed = ", ".join(
            f"{key} {saved.get(key)!r} → {spec.get(key)!r}"
            for key in sorted(set(saved) | set(spec))
            if saved.get(key) != spec.get(key)
        )
        raise CheckpointMismatch(
            f"{where} holds a run with other options ({changed}): use a new output folder, "
            "or start over in this one"
        )
    if state.get("dataset") not in (None, dataset_fingerprint):
        raise CheckpointMismatch(
            f"{where} holds a run on other data: use a new output folder, or start over in this one"
        )


def check_same_start(state: dict | None, start_fingerprint: str | None, where: Path) -> None:
    """The frozen layers are not in a checkpoint: a resume must find the weights the run started
    from (a reinstalled weights file with other values would be mixed in silently)."""
    if state and state.get("start") not in (None, start_fingerprint):
        raise CheckpointMismatch(
            f"{where} holds a run that started from other weights than those installed now: "
            "reinstall the weights it started from, or start over in a new job"
        )


def _with_current_defaults(saved: dict | None) -> dict | None:
    """A spec saved before an option existed ran with that option's default."""
    from model.training.spec import TrainSpec

    try:
        return saved and TrainSpec.model_validate(saved).model_dump(mode="json")
    except ValueError:
        return saved


def load_checkpoint(directory: Path, variables: list) -> dict | None:
    """Restore `variables` in place and return the saved state, or None when there is none.

    The checkpoint after the last epoch (`training_done`) holds no variables: nothing trains
    after it, and the test and the export read the best epoch's weights.
    """
    directory = _existing(directory)
    if directory is None:
        return None
    state = json.loads((directory / STATE_FILE).read_text())
    if state.get("training_done"):
        return state
    with np.load(directory / VARIABLES_FILE) as saved:
        values = [saved[f"arr_{i}"] for i in range(len(saved.files))]
    hint = "it belongs to a run with other layers, optimizer or classes; use a new output folder"
    if len(values) != len(variables):
        raise CheckpointMismatch(
            f"the checkpoint in {directory} holds {len(values)} variables, this run {len(variables)}: {hint}"
        )
    for variable, value in zip(variables, values):
        if tuple(variable.shape) != value.shape:
            raise CheckpointMismatch(
                f"the checkpoint in {directory} has {variable.path} as {value.shape}, "
                f"this run needs {tuple(variable.shape)}: {hint}"
            )
        variable.assign(value)
    return state
