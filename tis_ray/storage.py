"""Run directories on any filesystem pyarrow reaches: a local path, or a URI (s3://, gs://, ... with query
options such as ?endpoint_override=127.0.0.1:9000&scheme=http), exactly what Ray Tune takes as storage_path.

Every read and write of a run directory goes through `Storage`. Nodes share nothing but the location:
folders that trials read (tokenized data, cluster labels) are fetched once per node into a local cache keyed
by a hash of their content (file names, sizes and manifests), not once per trial.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import logging
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import numpy as np
from pyarrow import fs as pafs

from tis_ray.errors import TisRayError
from tis_ray.io import folder_written_whole, new_output_dir, write_json, write_text

log = logging.getLogger(__name__)

MANIFESTS = ("data.json", "meta.json", "manifest.json")  # small files whose bytes go into a folder's cache key


def is_uri(location: str) -> bool:
    """True for 'scheme://...' locations (s3, gs, hdfs, file ...), False for plain local paths."""
    return "://" in str(location)


def join(location: str, *parts: str) -> str:
    """Return `location` with `parts` appended to its path, keeping a URI's query options."""
    parts = [p.strip("/") for p in parts if p]
    if not is_uri(location):
        return str(Path(location, *parts))
    s = urlsplit(location)
    return urlunsplit((s.scheme, s.netloc, "/".join([s.path.rstrip("/"), *parts]), s.query, s.fragment))


def _log_transfer(verb: str, size: int, seconds: float, where: str) -> None:
    log.info("%s %.1f MB in %.1f s (%.1f MB/s): %s", verb, size / 2**20, seconds, size / 2**20 / max(seconds, 1e-9),
             where.split("?")[0])


def check_writable(folder: Path) -> None:
    """Raise TisRayError when `folder` cannot be created or written: a folder is made in its nearest existing
    ancestor and removed at once (the permission bits alone do not tell, for root or on /proc)."""
    import tempfile

    existing = next((p for p in (folder, *folder.parents) if p.exists()), Path("/"))
    if not existing.is_dir():
        raise TisRayError(f"storage_path: cannot create {folder}: {existing} is a file, not a folder")
    try:
        os.rmdir(tempfile.mkdtemp(prefix=".tis_ray_probe_", dir=existing))
    except OSError as exc:
        raise TisRayError(f"storage_path: cannot write in {existing} (to create {folder}): "
                          f"{exc.strerror or exc}; choose a folder you can write, with storage_path or "
                          "--set storage_path=...") from None


class Storage:
    """A run directory (or any folder) at a local path or URI, read and written through pyarrow.fs."""

    def __init__(self, location: str | Path):
        self.location = str(location)
        try:
            self.fs, self.root = pafs.FileSystem.from_uri(self.location if is_uri(self.location)
                                                          else os.path.abspath(self.location))
        except Exception as exc:  # noqa: BLE001 - pyarrow raises ArrowInvalid / OSError / ValueError here
            raise TisRayError(f"storage {self.location}: {str(exc).splitlines()[0]}") from None
        self.root = self.root.rstrip("/")

    @property
    def local(self) -> bool:
        return isinstance(self.fs, pafs.LocalFileSystem)

    def path(self, rel: str = "") -> str:
        """Return the filesystem path of `rel` under this folder."""
        return f"{self.root}/{rel.strip('/')}" if rel else self.root

    def child(self, rel: str) -> Storage:
        """Return the Storage of a sub-folder."""
        return Storage(join(self.location, rel))

    def check(self) -> None:
        """Raise TisRayError with the cause when the location cannot be reached (endpoint, bucket, rights)."""
        try:
            self.fs.get_file_info(self.root)
            if not self.local:  # the bucket must exist: creating it is the user's decision
                bucket = self.root.split("/", 1)[0]
                if self.fs.get_file_info(bucket).type == pafs.FileType.NotFound:
                    raise TisRayError(f"storage {self.location}: bucket {bucket!r} does not exist; create it first")
        except OSError as exc:
            raise TisRayError(f"cannot reach storage {self.location}: {str(exc).splitlines()[0]}") from None
        if self.local:
            check_writable(Path(self.root))


    def exists(self, rel: str = "") -> bool:
        """True when `rel` is a file or a non-empty folder here."""
        return self.fs.get_file_info(self.path(rel)).type != pafs.FileType.NotFound

    def read_bytes(self, rel: str) -> bytes:
        with self.fs.open_input_stream(self.path(rel)) as handle:
            return handle.read()

    def read_text(self, rel: str) -> str:
        return self.read_bytes(rel).decode("utf-8")

    def read_json(self, rel: str) -> Any:
        return json.loads(self.read_text(rel))

    def read_npy(self, rel: str) -> np.ndarray:
        """Return a .npy array here (never unpickled)."""
        return np.load(io.BytesIO(self.read_bytes(rel)), allow_pickle=False)

    def write_text(self, rel: str, text: str) -> None:
        """Write a text file (atomically on a local disk; an object store's PUT is whole by nature)."""
        if self.local:
            write_text(self.path(rel), text)
            return
        with self.fs.open_output_stream(self.path(rel)) as handle:
            handle.write(text.encode("utf-8"))

    def write_json(self, rel: str, data: Any) -> None:
        if self.local:
            write_json(self.path(rel), data)
        else:
            self.write_text(rel, json.dumps(data, indent=2, sort_keys=True) + "\n")

    def folders(self, rel: str = "") -> list[str]:
        """Return the names of the sub-folders of `rel`."""
        selector = pafs.FileSelector(self.path(rel), allow_not_found=True)
        return sorted(info.base_name for info in self.fs.get_file_info(selector)
                      if info.type == pafs.FileType.Directory)

    def file_names(self, rel: str = "") -> list[str]:
        """Return the names of the files directly in `rel` (not in its sub-folders)."""
        selector = pafs.FileSelector(self.path(rel), allow_not_found=True)
        return sorted(info.base_name for info in self.fs.get_file_info(selector) if info.type == pafs.FileType.File)

    def files(self, rel: str = "") -> list[pafs.FileInfo]:
        """Return every file under `rel`, recursively."""
        selector = pafs.FileSelector(self.path(rel), recursive=True, allow_not_found=True)
        return [info for info in self.fs.get_file_info(selector) if info.type == pafs.FileType.File]

    def delete_file(self, rel: str) -> None:
        """Delete the file `rel` (nothing when it is not there)."""
        if self.exists(rel):
            self.fs.delete_file(self.path(rel))

    def delete(self, rel: str) -> None:
        """Delete the folder `rel` and everything under it (nothing when it is not there)."""
        if self.exists(rel):
            self.fs.delete_dir(self.path(rel))

    @contextlib.contextmanager
    def removed_on_failure(self, keep: Callable[[], bool] = lambda: False) -> Iterator[Storage]:
        """Yield this folder for writing; if it did not exist and the block fails, remove it again, so a run
        stopped by bad input leaves nothing behind and never touches an older one. `keep()` says, after a
        failure, that the folder holds finished work worth more than a clean slate (then it stays)."""
        if self.local:
            with new_output_dir(self.root, keep=keep) as folder:
                folder.mkdir(parents=True, exist_ok=True)
                yield self
            return
        created = not self.exists()
        try:
            yield self
        except BaseException:
            if created and not keep():
                self.delete("")
            raise

    def upload(self, local_dir: str | Path, rel: str) -> None:
        """Copy a local folder to `rel` here (a no-op when it is already that folder)."""
        target = self.path(rel)
        if self.local and os.path.abspath(local_dir) == os.path.abspath(target):
            return
        start = time.perf_counter()
        pafs.copy_files(str(local_dir), target, source_filesystem=pafs.LocalFileSystem(),
                        destination_filesystem=self.fs)
        size = sum(f.stat().st_size for f in Path(local_dir).rglob("*") if f.is_file())
        _log_transfer("uploaded", size, time.perf_counter() - start, join(self.location, rel))

    def download(self, rel: str, local_dir: str | Path) -> Path:
        """Copy the folder `rel` here into the local folder `local_dir` (files there are replaced); returns it."""
        Path(local_dir).mkdir(parents=True, exist_ok=True)
        pafs.copy_files(self.path(rel), str(local_dir), source_filesystem=self.fs,
                        destination_filesystem=pafs.LocalFileSystem())
        return Path(local_dir)

    def fetch(self, rel: str, parts: list[str] | None = None) -> Path:
        """Return a local folder with the content of `rel`: itself on a local disk, else a node-local cached copy.

        `parts`: only these sub-paths of `rel` (a trial's tokenization, not every tokenizer's), laid out as in
        `rel`. The cache key hashes the fetched file names, sizes and manifests, so a changed folder is fetched
        again, and concurrent trials on one node download it once (the copy is renamed into place whole).
        """
        if self.local:
            return Path(self.path(rel))
        parts = parts or [""]
        digest = hashlib.sha256(self.location.split("?")[0].encode() + rel.encode())
        for part in parts:
            infos = self.files(f"{rel}/{part}".rstrip("/"))
            if not infos:
                raise TisRayError(f"{join(self.location, rel, part)}: nothing there to read")
            for info in sorted(infos, key=lambda i: i.path):
                digest.update(f"{info.path}:{info.size}".encode())
                if info.base_name in MANIFESTS:
                    digest.update(self.read_bytes(info.path.removeprefix(self.root + "/")))
        from tis_ray.data.loaders import cache_dir

        target = cache_dir() / "storage" / digest.hexdigest()[:24]
        if not target.is_dir():
            start = time.perf_counter()
            with folder_written_whole(target) as tmp:  # another trial on this node may fetch it first: fine
                for part in parts:
                    (tmp / part).mkdir(parents=True, exist_ok=True)
                    pafs.copy_files(self.path(f"{rel}/{part}".rstrip("/")), str(tmp / part),
                                    source_filesystem=self.fs, destination_filesystem=pafs.LocalFileSystem())
            size = sum(f.stat().st_size for f in target.rglob("*") if f.is_file())
            _log_transfer("fetched", size, time.perf_counter() - start, join(self.location, rel))
        return target
