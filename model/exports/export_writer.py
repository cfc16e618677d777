"""Writing exports' SavedModels: TensorFlow saves the first of each network shape, the rest reuse it.

The first export of a shape (class count and preprocessing) is saved by TensorFlow from a portable
network built for it, and its graph (`saved_model.pb`) and checkpoint object graph are kept: they
do not depend on the weights. Later exports of that shape write the same graph and only the
weights, straight from the trained network, as a checkpoint in up to two shards that
TensorFlow's own `MergeV2Checkpoints` joins under one index. A worker's jobs usually keep the same
frozen layers (conv1-fc6 of the installed weights: 160 of an export's 228 MB): their shard is
hard-linked from the previous export when it holds the same values, and written otherwise.
TensorFlow reads the result as any sharded checkpoint, checksums included.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

OBJECT_GRAPH_KEY = "_CHECKPOINTABLE_OBJECT_GRAPH"
WEIGHT_KEY = "layer_weights/{}/{}/.ATTRIBUTES/VARIABLE_VALUE"  # the serving module's `layer_weights`


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
    """Writes SavedModels of networks whose weights are given by layer name (kernel, bias)."""

    def __init__(self, max_shapes: int = 8):
        self._graphs: OrderedDict[Hashable, tuple[bytes, bytes]] = OrderedDict()  # pb, object graph
        self._max_shapes = max_shapes
        self._shard: _Shard | None = None

    def save(
        self,
        shape: Hashable,
        weights: Mapping[str, Sequence],
        directory: Path,
        settled: Path,
        shared: SharedLayers | None,
        full_save: Callable[[Path], None],
    ) -> None:
        """Write the SavedModel of `weights` into `directory`, which the caller then moves to
        `settled`; `full_save(directory)` has TensorFlow save the first one of each `shape`."""
        import tensorflow as tf
        from tensorflow.python.saved_model import fingerprinting_utils

        directory = Path(directory)
        graph = self._graphs.get(shape)
        if graph is None:
            full_save(directory)
            reader = tf.train.load_checkpoint(str(directory / "variables" / "variables"))
            self._graphs[shape] = (
                (directory / "saved_model.pb").read_bytes(),
                reader.get_tensor(OBJECT_GRAPH_KEY),
            )
            while len(self._graphs) > self._max_shapes:
                self._graphs.popitem(last=False)
            return
        self._graphs.move_to_end(shape)
        variables = directory / "variables"
        variables.mkdir(parents=True)
        (directory / "assets").mkdir()
        own = {name: values for name, values in weights.items() if not shared or name not in shared.layers}
        object_graph = {OBJECT_GRAPH_KEY: tf.constant(graph[1])}
        if shared is None:
            _save_shard(variables / "variables", own, object_graph)
        else:
            shared_prefix, own_prefix = variables / "shared", variables / "own"
            if not self._link_shard(shared_prefix, shared):
                _save_shard(shared_prefix, {name: weights[name] for name in shared.layers})
                data = os.stat(f"{shared_prefix}.data-00000-of-00001")
                index = Path(f"{shared_prefix}.index").read_bytes()
                self._shard = _Shard(shared, Path(), index, (data.st_dev, data.st_ino, data.st_size))
            _save_shard(own_prefix, own, object_graph)
            tf.raw_ops.MergeV2Checkpoints(
                checkpoint_prefixes=[str(shared_prefix), str(own_prefix)],
                destination_prefix=str(variables / "variables"),
                delete_old_dirs=False,
            )
            self._shard.path = Path(settled) / "variables" / "variables.data-00000-of-00002"
        (directory / "saved_model.pb").write_bytes(graph[0])  # last, as TensorFlow does
        fingerprinting_utils.write_fingerprint(str(directory))

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


def _save_shard(prefix: Path, weights: Mapping[str, Sequence], extra: Mapping | None = None) -> None:
    import tensorflow as tf

    tensors = {
        WEIGHT_KEY.format(name, i): tf.cast(value, tf.float32)  # as the portable network holds them
        for name, values in weights.items()
        for i, value in enumerate(values)
    }
    tensors.update(extra or {})
    tf.raw_ops.SaveV2(
        prefix=str(prefix),
        tensor_names=list(tensors),
        shape_and_slices=[""] * len(tensors),
        tensors=list(tensors.values()),
    )
