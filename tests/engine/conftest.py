from pathlib import Path

import pytest

from model.data.dataset import PreparedDataset, SplitFractions, prepare_dataset
from model.exports.weights import write_synthetic_weights
from testkit.images import class_folder_zip


@pytest.fixture(scope="session")
def weights_file(tmp_path_factory) -> Path:
    """Installed weights with bvlc_alexnet's shapes (the real one is not downloaded in tests)."""
    return write_synthetic_weights(tmp_path_factory.mktemp("weights") / "bvlc_alexnet.npz", seed=0)


@pytest.fixture(scope="session")
def dataset(tmp_path_factory) -> PreparedDataset:
    """Two classes, 13 images each: 9 train, 2 val, 2 test per class (the last batch is partial)."""
    root = tmp_path_factory.mktemp("dataset")
    archive = class_folder_zip(root / "cats_dogs.zip", per_class=13)
    return prepare_dataset(archive, root / "prepared", SplitFractions(0.15, 0.15, seed=1))
