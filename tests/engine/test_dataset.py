import zipfile

import numpy as np
import pytest

from model.data.dataset import PreparedDataset, SplitFractions, inspect_source, prepare_dataset
from model.data.sources import ArchiveLimits, DatasetError
from testkit.images import class_folder_tree, class_folder_zip, make_image


def test_class_folders_zip_is_split_stratified_with_a_seed(tmp_path):
    archive = class_folder_zip(tmp_path / "d.zip", classes=("b_dog", "a_cat"), per_class=20)
    dataset = prepare_dataset(archive, tmp_path / "out", SplitFractions(0.15, 0.15, seed=7))
    assert dataset.classes == ["a_cat", "b_dog"]
    assert dataset.manifest["splits"] == {"train": 28, "val": 6, "test": 6}
    for split, per_class in (("train", 14), ("val", 3), ("test", 3)):
        assert np.bincount(dataset.labels[dataset.indices(split)]).tolist() == [per_class, per_class]
    assert dataset.images.shape == (40, 227, 227, 3) and dataset.images.dtype == np.uint8
    again = prepare_dataset(archive, tmp_path / "again", SplitFractions(0.15, 0.15, seed=7))
    assert (again.splits == dataset.splits).all() and again.fingerprint == dataset.fingerprint
    other = prepare_dataset(archive, tmp_path / "other", SplitFractions(0.15, 0.15, seed=8))
    assert (other.splits != dataset.splits).any()


def test_wrapping_folder_and_junk_are_ignored(tmp_path):
    path = tmp_path / "wrapped.zip"
    with zipfile.ZipFile(path, "w") as archive:
        for i in range(4):
            archive.writestr(f"pets/cat/{i}.jpg", make_image(0, i))
            archive.writestr(f"pets/dog/{i}.jpg", make_image(1, i))
        archive.writestr("__MACOSX/pets/cat/._0.jpg", b"junk")
        archive.writestr("pets/cat/.DS_Store", b"junk")
    dataset = prepare_dataset(path, tmp_path / "out", SplitFractions(0.25, 0.0))
    assert dataset.classes == ["cat", "dog"] and len(dataset) == 8 and dataset.manifest["rejected"] == []


def test_explicit_train_val_test_folders(tmp_path):
    path = tmp_path / "splits.zip"
    with zipfile.ZipFile(path, "w") as archive:
        for split, count in (("train", 5), ("val", 2), ("test", 1)):
            for cls, name in enumerate(("cat", "dog")):
                for i in range(count):
                    archive.writestr(f"{split}/{name}/{i}.png", make_image(cls, i, fmt="PNG"))
    dataset = prepare_dataset(path, tmp_path / "out")
    assert dataset.manifest["splits"] == {"train": 10, "val": 4, "test": 2}


def test_text_index_with_spaces_in_paths(tmp_path):
    path = tmp_path / "index.zip"
    lines = []
    with zipfile.ZipFile(path, "w") as archive:
        for i in range(6):
            for label in (0, 1):
                name = f"images/my photo {label}-{i}.jpg"
                archive.writestr(name, make_image(label, i))
                lines.append(f"{name} {label}")
        archive.writestr("train.txt", "\n".join(lines[:8]))
        archive.writestr("val.txt", "\n".join(lines[8:]) + "\nimages/missing.jpg 1\n")
    dataset = prepare_dataset(path, tmp_path / "out")
    assert dataset.classes == ["0", "1"]
    assert dataset.manifest["splits"] == {"train": 8, "val": 4, "test": 0}
    assert dataset.manifest["rejected"] == [
        {"path": "images/missing.jpg", "reason": "listed in val.txt but not in the ZIP"}
    ]


def test_local_text_index_like_the_original_script(tmp_path):
    class_folder_tree(tmp_path / "imgs", per_class=5)
    index = tmp_path / "all.txt"
    index.write_text("\n".join(f"{p} {p.parent.name}" for p in sorted((tmp_path / "imgs").rglob("*.jpg"))))
    dataset = prepare_dataset(index, tmp_path / "out", SplitFractions(0.2, 0.2))
    assert dataset.classes == ["cat", "dog"] and len(dataset) == 10


def test_unreadable_images_are_listed_not_fatal(tmp_path):
    archive = class_folder_zip(
        tmp_path / "d.zip",
        per_class=6,
        extra={"cat/broken.jpg": b"\xff\xd8\xff garbage", "dog/empty.png": b"", "dog/inner.zip": b"PK"},
    )
    dataset = prepare_dataset(archive, tmp_path / "out", SplitFractions(0.2, 0.0))
    reasons = {item["path"]: item["reason"] for item in dataset.manifest["rejected"]}
    assert set(reasons) == {"cat/broken.jpg", "dog/empty.png", "dog/inner.zip"}
    assert "nested archive" in reasons["dog/inner.zip"] and "empty" in reasons["dog/empty.png"]
    assert len(dataset) == 12


def test_too_few_images_for_the_split_is_a_clear_error(tmp_path):
    class_folder_tree(tmp_path / "tree", per_class=2)
    with pytest.raises(DatasetError, match=r"class 'cat' has 2 image\(s\).*at least 3"):
        prepare_dataset(tmp_path / "tree", tmp_path / "out", SplitFractions(0.15, 0.15))
    assert not (tmp_path / "out").exists() and not (tmp_path / "out.partial").exists()


@pytest.mark.parametrize(
    "members, message",
    [
        ({"cat/a.jpg": make_image(0, 1)}, "at least 2 classes"),
        ({}, "empty"),
        ({"../evil/a.jpg": b"x", "cat/a.jpg": b"y"}, "unsafe path"),
        ({"/abs/a.jpg": b"x"}, "unsafe path"),
        ({"C:/win/a.jpg": b"x"}, "unsafe path"),
    ],
)
def test_unusable_zips_are_refused(tmp_path, members, message):
    path = tmp_path / "bad.zip"
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    with pytest.raises(DatasetError, match=message):
        prepare_dataset(path, tmp_path / "out")


def test_symlink_members_are_refused(tmp_path):
    path = tmp_path / "link.zip"
    with zipfile.ZipFile(path, "w") as archive:
        info = zipfile.ZipInfo("cat/link.jpg")
        info.external_attr = 0o120777 << 16
        archive.writestr(info, "/etc/passwd")
    with pytest.raises(DatasetError, match="symbolic link"):
        prepare_dataset(path, tmp_path / "out")


def test_zip_bomb_ratio_is_refused_before_extraction(tmp_path):
    path = tmp_path / "bomb.zip"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("cat/zeros.jpg", b"\0" * (8 * 1024 * 1024))
    with pytest.raises(DatasetError, match="compressed more than"):
        prepare_dataset(path, tmp_path / "out")
    with pytest.raises(DatasetError, match="members"):
        prepare_dataset(
            class_folder_zip(tmp_path / "many.zip", per_class=3),
            tmp_path / "o2",
            limits=ArchiveLimits(max_members=4),
        )


def test_not_a_zip(tmp_path):
    path = tmp_path / "data.zip"
    path.write_bytes(b"definitely not a zip")
    with pytest.raises(DatasetError, match="not a ZIP"):
        prepare_dataset(path, tmp_path / "out")


def test_store_reopens_memory_mapped(tmp_path):
    archive = class_folder_zip(tmp_path / "d.zip", per_class=5)
    prepare_dataset(archive, tmp_path / "out", SplitFractions(0.2, 0.2))
    reopened = PreparedDataset(tmp_path / "out")
    assert isinstance(reopened.images, np.memmap) and len(reopened) == 10


def test_a_class_without_readable_images_is_named(tmp_path):
    archive = class_folder_zip(
        tmp_path / "d.zip", per_class=5, extra={"bird/readme.txt": b"no pictures here"}
    )
    with pytest.raises(DatasetError, match="class folder.*bird.*hold no image files"):
        inspect_source(archive)  # seen in the listing, before anything is decoded
    broken = class_folder_zip(tmp_path / "b.zip", per_class=5, extra={"bird/x.jpg": b"not a jpeg"})
    inspect_source(broken)
    with pytest.raises(DatasetError, match="class folder.*bird.*no readable images"):
        prepare_dataset(broken, tmp_path / "out", SplitFractions(0.2, 0.2))
    path = tmp_path / "emptydir.zip"
    with zipfile.ZipFile(path, "w") as zf:
        for i in range(5):
            zf.writestr(f"cat/{i}.jpg", make_image(0, i))
            zf.writestr(f"dog/{i}.jpg", make_image(1, i))
        zf.writestr(zipfile.ZipInfo("fish/"), b"")
    with pytest.raises(DatasetError, match="fish"):
        prepare_dataset(path, tmp_path / "out2", SplitFractions(0.2, 0.2))


def test_local_train_and_val_indexes_keep_their_splits(tmp_path):
    class_folder_tree(tmp_path / "imgs", per_class=4)
    images = sorted((tmp_path / "imgs").rglob("*.jpg"))
    (tmp_path / "train.txt").write_text("\n".join(f"{p} {p.parent.name}" for p in images if int(p.stem) < 3))
    (tmp_path / "val.txt").write_text("\n".join(f"{p} {p.parent.name}" for p in images if int(p.stem) >= 3))
    dataset = prepare_dataset(tmp_path / "train.txt", tmp_path / "out")
    assert dataset.manifest["splits"] == {"train": 6, "val": 2, "test": 0}


def test_encrypted_and_corrupt_members_are_rejected_with_reasons(tmp_path):
    """zipfile raises RuntimeError / BadZipFile for these, not ImageError or OSError."""
    path = class_folder_zip(tmp_path / "d.zip", per_class=5)
    with zipfile.ZipFile(path, "a") as archive:
        archive.writestr("cat/secret.jpg", make_image(0, 77))
        archive.writestr("dog/damaged.jpg", make_image(1, 78))
        damaged = archive.getinfo("dog/damaged.jpg")
    data = bytearray(path.read_bytes())
    data[damaged.header_offset + 30 + len("dog/damaged.jpg") + 20] ^= 0xFF  # the CRC no longer matches
    central = data.rfind(b"PK\x01\x02", 0, data.rfind(b"cat/secret.jpg"))
    data[central + 8] |= 0x1  # the central directory's "encrypted" flag bit
    path.write_bytes(bytes(data))
    dataset = prepare_dataset(path, tmp_path / "out", SplitFractions(0.2, 0.2))
    reasons = {item["path"]: item["reason"] for item in dataset.manifest["rejected"]}
    assert "encrypted" in reasons["cat/secret.jpg"] and "bad CRC" in reasons["dog/damaged.jpg"]
    assert len(dataset) == 10
