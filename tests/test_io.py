"""Result files are written atomically and never pickled."""

import json

import numpy as np
import pytest

from tis_ray.io import _atomic_write, load_npy, new_output_dir, save_npy, write_json


def test_a_write_that_fails_midway_leaves_the_previous_file_and_no_temporary(tmp_path):
    path = write_json(tmp_path / "metrics.json", {"mnli_m/acc": 0.5})

    def crash_after_half(handle):
        handle.write(b'{"mnli_m/acc": 0.')
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        _atomic_write(path, crash_after_half)
    assert json.loads(path.read_text()) == {"mnli_m/acc": 0.5}
    assert [p.name for p in tmp_path.iterdir()] == ["metrics.json"]


def test_npy_round_trip_refuses_object_arrays(tmp_path):
    indices = np.array([3, 1, 4], dtype=np.int64)
    assert load_npy(save_npy(tmp_path / "subset_indices.npy", indices)).tolist() == [3, 1, 4]
    with pytest.raises(TypeError, match="pickle-free"):
        save_npy(tmp_path / "bad.npy", np.array([{"a": 1}], dtype=object))
    assert not (tmp_path / "bad.npy").exists()


def test_new_output_dir_removes_only_a_folder_it_created(tmp_path):
    fresh, existing = tmp_path / "fresh", tmp_path / "existing"
    existing.mkdir()
    (existing / "old.json").write_text("{}")
    for folder in (fresh, existing):
        with pytest.raises(RuntimeError), new_output_dir(folder):
            folder.mkdir(exist_ok=True)
            write_json(folder / "half.json", {})
            raise RuntimeError("bad input found late")
    assert not fresh.exists()
    assert (existing / "old.json").read_text() == "{}"


def test_a_folder_is_written_whole_or_not_at_all(tmp_path):
    from tis_ray.io import folder_written_whole

    target = tmp_path / "entry"
    with pytest.raises(RuntimeError), folder_written_whole(target) as tmp:
        (tmp / "half").write_text("x")
        raise RuntimeError("writer died")
    assert not target.exists() and not list(tmp_path.iterdir())  # no half entry, no temporary left
    with folder_written_whole(target) as tmp:
        (tmp / "a").write_text("first")
    with folder_written_whole(target) as tmp:  # someone else wrote it first: theirs stays
        (tmp / "a").write_text("second")
    assert (target / "a").read_text() == "first" and len(list(tmp_path.iterdir())) == 1
    with folder_written_whole(target, replace=True) as tmp:
        (tmp / "a").write_text("third")
    assert (target / "a").read_text() == "third" and len(list(tmp_path.iterdir())) == 1


def test_files_and_folders_are_created_with_the_users_umask(tmp_path):
    import os

    import numpy as np

    from tis_ray.io import folder_written_whole, save_npy, write_json, write_via

    old = os.umask(0o022)
    try:
        write_json(tmp_path / "m.json", {"a": 1})
        save_npy(tmp_path / "i.npy", np.arange(3))
        write_via(tmp_path / "t.csv", lambda tmp: open(tmp, "w").write("x\n"))
        with folder_written_whole(tmp_path / "folder") as tmp:
            (tmp / "f").write_text("x")
        modes = {name: (tmp_path / name).stat().st_mode & 0o777 for name in ("m.json", "i.npy", "t.csv", "folder")}
        assert modes == {"m.json": 0o644, "i.npy": 0o644, "t.csv": 0o644, "folder": 0o755}
        os.umask(0o077)  # a private umask stays private
        write_json(tmp_path / "private.json", {})
        assert (tmp_path / "private.json").stat().st_mode & 0o777 == 0o600
    finally:
        os.umask(old)
