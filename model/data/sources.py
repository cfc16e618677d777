"""Find the labelled images in what a user hands us: a ZIP, a folder, or a `path label` text index.

Layouts, looked for in this order below the root (a single wrapping folder is stepped into):
1. `train/`, `val/` and optional `test/`, each with one folder per class;
2. a text index: `train.txt` + `val.txt` (+ `test.txt`), or one `*.txt`, each line `path label`
   (split on the last whitespace, so paths may contain spaces);
3. one folder per class.
Nothing is extracted to disk: members are read straight from the archive, after the archive's
names, sizes and compression ratios have been checked.
"""

from __future__ import annotations

import os
import stat
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from model.data.preprocess import MAX_IMAGE_PIXELS

SPLITS = ("train", "val", "test")
ARCHIVE_SUFFIXES = (".zip", ".tar", ".gz", ".tgz", ".bz2", ".xz", ".7z", ".rar")
JUNK_PREFIXES = ("__MACOSX/",)


class DatasetError(ValueError):
    """A dataset that cannot be used as given; the message says what to change."""


@dataclass(frozen=True)
class ArchiveLimits:
    """What a ZIP may hold before we read any of it (zip bombs are refused up front)."""

    max_members: int = 1_000_000
    max_total_bytes: int = 64 * 1024**3
    max_member_bytes: int = 1024**3
    max_compression_ratio: float = 200.0
    max_image_pixels: int = MAX_IMAGE_PIXELS  # per image, checked from its header before decoding


@dataclass
class Entry:
    path: str
    label: str
    split: str | None


@dataclass
class Listing:
    """The labelled images found, plus files refused before decoding, with reasons."""

    entries: list[Entry]
    rejected: list[dict] = field(default_factory=list)
    read: Callable[[str], bytes] = lambda path: b""
    explicit_splits: bool = False
    class_folders: set[str] = field(default_factory=set)  # every class folder seen, empty ones too


def list_source(
    source: str | os.PathLike, limits: ArchiveLimits = ArchiveLimits(), name: str | None = None
) -> Listing:
    """What `source` holds, from its listing alone (a ZIP's central directory); `name` is how
    messages call it (the user's file name for an upload)."""
    source = Path(source)
    name = name or source.name
    if not source.exists():
        raise DatasetError(f"no such file or folder: {source}")
    if source.is_dir():
        entries = list(source.rglob("*"))
        files = sorted(p.relative_to(source).as_posix() for p in entries if p.is_file())
        dirs = sorted(p.relative_to(source).as_posix() + "/" for p in entries if p.is_dir())
        return _detect_layout(files, lambda path: (source / path).read_bytes(), dirs)
    if source.suffix.lower() == ".txt":
        return _local_index(source)
    if not zipfile.is_zipfile(source):
        raise DatasetError(f"{name} is not a ZIP file (expected a ZIP of class folders, or a text index)")
    try:
        archive = zipfile.ZipFile(source)
    except Exception as exc:  # BadZipFile, a truncated or corrupt central directory, ...
        raise DatasetError(f"{name} is a damaged ZIP: its table of contents cannot be read ({exc})") from exc
    files = _checked_members(archive, limits)
    dirs = sorted(info.filename for info in archive.infolist() if info.is_dir())
    return _detect_layout(files, archive.read, dirs)


def _checked_members(archive: zipfile.ZipFile, limits: ArchiveLimits) -> list[str]:
    infos = archive.infolist()
    if len(infos) > limits.max_members:
        raise DatasetError(f"the ZIP has {len(infos)} members; at most {limits.max_members} are allowed")
    total = 0
    files = []
    for info in infos:
        name = info.filename
        if _is_unsafe_name(name):
            raise DatasetError(
                f"unsafe path in ZIP: {name!r} (absolute paths, '..' and drive letters are refused)"
            )
        if stat.S_ISLNK(info.external_attr >> 16):
            raise DatasetError(f"symbolic link in ZIP: {name!r} (links are refused)")
        if info.is_dir():
            continue
        if info.file_size > limits.max_member_bytes:
            raise DatasetError(
                f"ZIP member {name!r} unpacks to {info.file_size} bytes; "
                f"the limit is {limits.max_member_bytes}"
            )
        if info.file_size > 1024 * 1024 and info.file_size > limits.max_compression_ratio * max(
            info.compress_size, 1
        ):
            raise DatasetError(
                f"ZIP member {name!r} is compressed more than "
                f"{limits.max_compression_ratio:.0f}:1 (zip bomb?)"
            )
        total += info.file_size
        files.append(name)
    if total > limits.max_total_bytes:
        raise DatasetError(f"the ZIP unpacks to {total} bytes; the limit is {limits.max_total_bytes}")
    if not files:
        raise DatasetError("the ZIP is empty")
    return sorted(files)


def _is_unsafe_name(name: str) -> bool:
    if name.startswith(("/", "\\")) or "\\" in name or (len(name) > 1 and name[1] == ":"):
        return True
    return ".." in PurePosixPath(name).parts


def _is_junk(path: str) -> bool:
    parts = PurePosixPath(path).parts
    return path.startswith(JUNK_PREFIXES) or any(part.startswith(".") for part in parts)


def _detect_layout(files: list[str], read: Callable[[str], bytes], dirs: list[str] = ()) -> Listing:
    files = [f for f in files if not _is_junk(f)]
    dirs = [d for d in dirs if not _is_junk(d)]
    prefix = _wrapping_folder(files)
    if prefix:
        files = [f[len(prefix) :] for f in files]
        dirs = [d[len(prefix) :] for d in dirs if d.startswith(prefix)]
        inner_read = read
        read = lambda path: inner_read(prefix + path)  # noqa: E731
    top_dirs = {PurePosixPath(f).parts[0] for f in files if len(PurePosixPath(f).parts) > 1}
    top_files = [f for f in files if "/" not in f]
    if "train" in top_dirs:
        return _split_folders(files, read, dirs)
    indexes = [f for f in top_files if f.lower().endswith(".txt")]
    if indexes:
        return _zip_index(files, indexes, read)
    return _class_folders(files, read, split=None, dirs=dirs)


def _wrapping_folder(files: list[str]) -> str:
    prefix = ""
    while True:
        rest = [f[len(prefix) :] for f in files]
        heads = {r.split("/", 1)[0] for r in rest}
        if len(heads) != 1 or any("/" not in r for r in rest):
            return prefix
        head = heads.pop()
        if head in SPLITS:
            return prefix
        if len({r.split("/")[1] for r in rest if r.count("/") >= 2}) == 0:
            return prefix  # the one folder holds files: it is a class, not a wrapper
        prefix += head + "/"


def _class_folders(files: list[str], read, split: str | None, base: str = "", dirs=()) -> Listing:
    entries, rejected = [], []
    folders = {
        PurePosixPath(d[len(base) :]).parts[0]
        for d in dirs
        if d.startswith(base) and d[len(base) :].strip("/")
    }
    for path in files:
        rel = path[len(base) :]
        parts = PurePosixPath(rel).parts
        if len(parts) < 2:
            rejected.append({"path": path, "reason": "not inside a class folder"})
            continue
        if path.lower().endswith(ARCHIVE_SUFFIXES):
            rejected.append({"path": path, "reason": "nested archive: not opened"})
            continue
        entries.append(Entry(path, parts[0], split))
        folders.add(parts[0])
    return Listing(
        entries,
        rejected,
        read,
        explicit_splits=split is not None,
        class_folders=folders if split is None else set(),
    )


def _split_folders(files: list[str], read, dirs=()) -> Listing:
    present = {PurePosixPath(f).parts[0] for f in files if "/" in f}
    if "val" not in present:
        raise DatasetError(
            "the dataset has a train/ folder but no val/ folder; add val/ or give one folder per class"
        )
    listing = Listing([], [], read, explicit_splits=True)
    for split in SPLITS:
        if split not in present:
            continue
        part = _class_folders(
            [f for f in files if f.startswith(split + "/")], read, None, base=split + "/", dirs=dirs
        )
        if split == "train":
            listing.class_folders = part.class_folders
        for entry in part.entries:
            entry.split = split
        listing.entries += part.entries
        listing.rejected += part.rejected
    listing.rejected += [
        {"path": f, "reason": "outside train/, val/ and test/"}
        for f in files
        if PurePosixPath(f).parts[0] not in SPLITS
    ]
    return listing


def _parse_index(text: str, origin: str) -> list[tuple[str, str]]:
    pairs = []
    for number, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        fields = line.rsplit(maxsplit=1)
        if len(fields) != 2:
            raise DatasetError(f"{origin} line {number}: expected 'path label', got {line!r}")
        pairs.append((fields[0], fields[1]))
    if not pairs:
        raise DatasetError(f"{origin} lists no images")
    return pairs


def _index_splits(indexes: list[str]) -> dict[str | None, str]:
    by_stem = {PurePosixPath(f).stem.lower(): f for f in indexes}
    if "train" in by_stem and "val" in by_stem:
        return {split: by_stem[split] for split in SPLITS if split in by_stem}
    if len(indexes) > 1:
        raise DatasetError(f"several index files ({', '.join(indexes)}); use one, or train.txt and val.txt")
    return {None: indexes[0]}


def _zip_index(files: list[str], indexes: list[str], read) -> Listing:
    present = set(files)
    listing = Listing([], [], read, explicit_splits=False)
    for split, index in _index_splits(indexes).items():
        text = read(index).decode("utf-8", errors="replace")
        for path, label in _parse_index(text, index):
            path = path[2:] if path.startswith("./") else path
            if path not in present:
                listing.rejected.append({"path": path, "reason": f"listed in {index} but not in the ZIP"})
                continue
            listing.entries.append(Entry(path, label, split))
        listing.explicit_splits = split is not None
    return listing


def _local_index(index: Path) -> Listing:
    """A text index on local disk; a train.txt or val.txt next to its twin brings the splits along."""
    paired = index.stem.lower() in ("train", "val") and all(
        (index.parent / f"{s}.txt").is_file() for s in ("train", "val")
    )
    files = (
        [str(index.parent / f"{s}.txt") for s in SPLITS if (index.parent / f"{s}.txt").is_file()]
        if paired
        else [str(index)]
    )
    listing = Listing([], [], lambda path: Path(path).read_bytes(), explicit_splits=paired)
    for split, file in _index_splits(files).items():
        name = Path(file).name
        for path, label in _parse_index(Path(file).read_text(errors="replace"), name):
            resolved = Path(path) if Path(path).is_absolute() else index.parent / path
            if not resolved.is_file():
                listing.rejected.append({"path": path, "reason": f"listed in {name} but no such file"})
                continue
            listing.entries.append(Entry(str(resolved), label, split))
    return listing
