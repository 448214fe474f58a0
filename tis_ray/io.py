"""Atomic, pickle-free file writing and reading shared by every module that writes results."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np


def _umask() -> int:
    """Return the process's umask; read from /proc where it can be, since setting it to read it races with
    threads creating files."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except OSError:
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _readable_as_created(tmp: str) -> None:
    """Give a temporary file the mode a plain open() would (0666 less the umask; 0644 by default): mkstemp makes
    it 0600, and results on a shared run directory must be readable by colleagues."""
    os.chmod(tmp, 0o666 & ~_umask())


def umask_modes(folder: str | Path) -> Path:
    """Give every file and folder under `folder` the mode a plain open() / mkdir() would (0644 / 0755 by
    default); returns `folder`. For what libraries write through their own private temporary files
    (transformers' save_pretrained leaves model.safetensors 0600)."""
    folder = Path(folder)
    mask = _umask()
    for path in [folder, *folder.rglob("*")]:
        if not path.is_symlink():
            os.chmod(path, (0o777 if path.is_dir() else 0o666) & ~mask)
    return folder


def _atomic_write(path: Path, write) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        _readable_as_created(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def write_via(path: str | Path, write_to: Callable[[str], Any]) -> Path:
    """Write a file with a writer that takes a file name (pandas, pyarrow) via write-then-rename; returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write_to(tmp)
        _readable_as_created(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def write_json(path: str | Path, data: Any) -> Path:
    """Write `data` as indented JSON via write-then-rename; returns the path."""
    text = json.dumps(data, indent=2, sort_keys=True, default=_json_default) + "\n"
    return _atomic_write(Path(path), lambda h: h.write(text.encode()))


def read_json(path: str | Path) -> Any:
    """Return the parsed JSON content of `path`."""
    return json.loads(Path(path).read_text())


def write_text(path: str | Path, text: str) -> Path:
    """Write `text` via write-then-rename; returns the path."""
    return _atomic_write(Path(path), lambda h: h.write(text.encode()))


def save_npy(path: str | Path, array: np.ndarray) -> Path:
    """Save a numeric array as .npy (never pickled) via write-then-rename; returns the path."""
    array = np.asarray(array)
    if array.dtype == object:
        raise TypeError("refusing to save an object array: .npy files here are pickle-free")
    return _atomic_write(Path(path), lambda h: np.save(h, array, allow_pickle=False))


def load_npy(path: str | Path, mmap: bool = False) -> np.ndarray:
    """Load a .npy file without ever unpickling; `mmap=True` maps it read-only instead of reading it."""
    return np.load(path, allow_pickle=False, mmap_mode="r" if mmap else None)


def sha256_of_indices(indices: np.ndarray) -> str:
    """Return the hex sha256 of an index array as little-endian int64 (order matters)."""
    return hashlib.sha256(np.ascontiguousarray(indices, dtype="<i8").tobytes()).hexdigest()


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serializable: {type(value).__name__}")


@contextmanager
def folder_written_whole(target: str | Path, replace: bool = False) -> Iterator[Path]:
    """Yield a temporary folder beside `target` to fill; when the block ends it is renamed to `target` whole.

    If `target` exists by then (another process wrote the same entry first), the new copy is dropped, or with
    `replace` it takes the old one's place. If the block fails, the temporary folder is removed.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}."))
    os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp makes it 0700: the renamed folder must be readable by others
    try:
        yield tmp
        if replace:
            shutil.rmtree(target, ignore_errors=True)
        tmp.rename(target)
    except OSError:
        shutil.rmtree(tmp, ignore_errors=True)
        if replace or not target.is_dir():
            raise
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


@contextmanager
def new_output_dir(path: str | Path, keep: Callable[[], bool] = lambda: False) -> Iterator[Path]:
    """Yield `path` as an output folder; if it did not exist and the block fails, remove it again, unless
    `keep()` says it holds finished work by then.

    So a run stopped by bad input never leaves a half-written folder behind, and never touches an old one.
    """
    path = Path(path)
    created = not path.exists()
    try:
        yield path
    except BaseException:
        if created and not keep():
            shutil.rmtree(path, ignore_errors=True)
        raise
