"""Writing exports' SavedModels, sharing the bytes of the layers one export has in common with the last.

A worker's jobs usually keep the same frozen layers (conv1-fc6 of the installed weights: 160 of
an export's 228 MB) and train fc7 and fc8. The first export of a kept serving network is saved by
TensorFlow as usual, and its graph (`saved_model.pb`) and checkpoint object graph are kept. Later
exports write that graph and a checkpoint in two shards, which TensorFlow's own
`MergeV2Checkpoints` joins under one index: the trained layers' shard, and the shared layers'
shard, hard-linked from the previous export when it holds the same values, written once
otherwise. TensorFlow reads the result as any sharded checkpoint, checksums included.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from model.layout import WEIGHT_LAYERS

OBJECT_GRAPH_KEY = "_CHECKPOINTABLE_OBJECT_GRAPH"
WEIGHT_KEY = "layer_weights/{}/{}/.ATTRIBUTES/VARIABLE_VALUE"  # `ServingModule.layer_weights`


@dataclass(frozen=True)
class SharedLayers:
    """Layers whose values are named by `identity` (e.g. a training's frozen prefix fingerprint):
    two exports with equal `SharedLayers` hold the same bytes for those layers."""

    layers: tuple[str, ...]
    identity: str


@dataclass
class _Shard:
    shared: SharedLayers
    path: Path  # the data file, where the export that wrote it ended up
    index: bytes  # its index as a checkpoint of its own
    stat: tuple[int, int, int]  # device, inode, size: the very file written


class SavedModelWriter:
    """Saves one serving module (a `tf.Module` with `serve` and `layer_weights`) again and again."""

    def __init__(self, module):
        self.module = module
        self._graph: tuple[bytes, bytes] | None = None  # saved_model.pb, checkpoint object graph
        self._shard: _Shard | None = None

    def save(self, directory: Path, settled: Path, shared: SharedLayers | None = None) -> None:
        """Write the SavedModel into `directory`, which the caller then moves to `settled`."""
        import tensorflow as tf
        from tensorflow.python.saved_model import fingerprinting_utils

        directory = Path(directory)
        if self._graph is None or shared is None:
            signatures = {"serving_default": self.module.serve}
            tf.saved_model.save(self.module, str(directory), signatures=signatures)
            if self._graph is None:
                reader = tf.train.load_checkpoint(str(directory / "variables" / "variables"))
                self._graph = (directory / "saved_model.pb").read_bytes(), reader.get_tensor(OBJECT_GRAPH_KEY)
            return
        variables = directory / "variables"
        variables.mkdir(parents=True)
        (directory / "assets").mkdir()
        shared_prefix, trained_prefix = variables / "shared", variables / "trained"
        if not self._link_shard(shared_prefix, shared):
            self._save_shard(shared_prefix, shared.layers, {OBJECT_GRAPH_KEY: tf.constant(self._graph[1])})
            index = Path(f"{shared_prefix}.index").read_bytes()
            data = os.stat(f"{shared_prefix}.data-00000-of-00001")
            self._shard = _Shard(shared, Path(), index, (data.st_dev, data.st_ino, data.st_size))
        self._save_shard(trained_prefix, [name for name in WEIGHT_LAYERS if name not in shared.layers])
        tf.raw_ops.MergeV2Checkpoints(
            checkpoint_prefixes=[str(shared_prefix), str(trained_prefix)],
            destination_prefix=str(variables / "variables"),
            delete_old_dirs=False,
        )
        self._shard.path = Path(settled) / "variables" / "variables.data-00000-of-00002"
        (directory / "saved_model.pb").write_bytes(self._graph[0])  # last, as TensorFlow does
        fingerprinting_utils.write_fingerprint(str(directory))

    def _save_shard(self, prefix: Path, layers, extra: dict | None = None) -> None:
        import tensorflow as tf

        tensors = {
            WEIGHT_KEY.format(name, i): weight
            for name in layers
            for i, weight in enumerate(self.module.layer_weights[name])
        }
        tensors.update(extra or {})
        tf.raw_ops.SaveV2(
            prefix=str(prefix),
            tensor_names=list(tensors),
            shape_and_slices=[""] * len(tensors),
            tensors=list(tensors.values()),
        )

    def _link_shard(self, prefix: Path, shared: SharedLayers) -> bool:
        """Hard-link the last export's shared shard if it holds these values and is still there."""
        shard = self._shard
        if shard is None or shard.shared != shared:
            return False
        link = Path(f"{prefix}.data-00000-of-00001")
        try:
            os.link(shard.path, link)
            linked = os.stat(link)
        except OSError:  # deleted with its job, another file system, too many links
            return False
        if (linked.st_dev, linked.st_ino, linked.st_size) != shard.stat:  # replaced by another file
            link.unlink()
            return False
        Path(f"{prefix}.index").write_bytes(shard.index)
        return True
