"""The installed pretrained weights as the whole service sees them: one check, cached on the file's
identity (size, mtime, inode), so a reinstalled file is picked up without a restart and an unusable
one is named the same way by POST /jobs, /predict, /readyz and a starting worker.

Messages name the file relative to the data folder (or by its setting), never by a host path.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from functools import lru_cache

from core.config import Settings
from core.errors import WeightsNotInstalled, WeightsUnusable


class WeightsState(StrEnum):
    OK = "ok"
    MISSING = "missing"
    INVALID = "invalid"


@dataclass(frozen=True)
class InstalledWeights:
    state: WeightsState
    reason: str | None = None
    fingerprint: str | None = None  # of the file's values; None for a file written without one
    identity: str = ""  # the file's size, mtime and inode: what caches of it are keyed by

    def describe(self) -> str:
        """`ok`, `missing` or `invalid: <reason>`, as /readyz reports it."""
        return f"{self.state}: {self.reason}" if self.state is WeightsState.INVALID else str(self.state)


def shown_weights_path(settings: Settings) -> str:
    """The weights file as a client may see it: relative to the data folder, or by its setting."""
    try:
        return f"{settings.weights_path.relative_to(settings.data_dir)} in the data folder"
    except ValueError:
        return f"FINETUNE_WEIGHTS_PATH ({settings.weights_path.name})"


def installed_weights(settings: Settings) -> InstalledWeights:
    path = settings.weights_path
    try:
        stat = path.stat()
    except FileNotFoundError:
        return InstalledWeights(WeightsState.MISSING)
    except OSError as exc:
        return InstalledWeights(WeightsState.INVALID, f"cannot read it ({exc.strerror})")
    identity = f"{stat.st_size}-{stat.st_mtime_ns}-{stat.st_ino}"
    return _check(str(path), identity, shown_weights_path(settings))


@lru_cache(maxsize=16)
def _check(path: str, identity: str, shown: str) -> InstalledWeights:
    from model.exports.weights import WeightsError, check_pretrained_file

    try:
        fingerprint = check_pretrained_file(path)
    except WeightsError as exc:
        return InstalledWeights(WeightsState.INVALID, str(exc).replace(path, shown), identity=identity)
    return InstalledWeights(WeightsState.OK, fingerprint=fingerprint, identity=identity)


def require_weights(settings: Settings, use: str = "weights 'imagenet'") -> InstalledWeights:
    """The installed weights when usable; otherwise a 409 that says what is wrong and what to do."""
    weights = installed_weights(settings)
    shown = shown_weights_path(settings)
    if weights.state is WeightsState.MISSING:
        raise WeightsNotInstalled(
            f"{use} need the pretrained weights ({shown}), which are not installed: run "
            "`finetune download-weights` on the service's machine, or use weights 'random'"
        )
    if weights.state is WeightsState.INVALID:
        raise WeightsUnusable(
            f"{use} need the pretrained weights ({shown}), which cannot be used: {weights.reason}. "
            "Reinstall them with `finetune download-weights` (no restart needed)"
        )
    return weights
