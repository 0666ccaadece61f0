"""skxmr._persistence._container: the model directory as files, with no
estimator involved (atomic writes, manifest digest, regular files only,
arrays checked against the manifest, sub-directories of opaque files)."""

import json
import os

import numpy as np
import pytest
import scipy.sparse as sp

from skxmr import ModelFormatError
from skxmr._persistence import _container
from skxmr._persistence._container import Reader, Writer, write_model_dir


def _write(path, folders=None):
    writer = Writer()
    writer.add("a.values", np.arange(6, dtype=np.float32))
    writer.add_sparse("m", sp.random(5, 4, density=0.5, format="csc", random_state=0,
                                     dtype=np.float32))
    for name, fill in (folders or {}).items():
        writer.add_folder(name, fill)
    write_model_dir(path, writer, {"class": "Thing", "params": {"x": 1},
                                   "attributes": {"label": "é"}})


def _fill(folder):
    os.makedirs(os.path.join(folder, "sub"))
    with open(os.path.join(folder, "sub", "weights.bin"), "wb") as f:
        f.write(b"\x00" * 100)
    with open(os.path.join(folder, "config.json"), "w") as f:
        f.write("{}")


def test_round_trip_and_manifest(tmp_path):
    path = tmp_path / "c"
    _write(path, {"blob": _fill})
    assert sorted(os.listdir(tmp_path)) == ["c"]
    reader = Reader(str(path))
    meta = reader.meta
    # plain arrays only: the oldest version this skxmr reads (older ones read it)
    assert meta["format_version"] == _container.OLDEST_VERSION == 2
    assert _container.FORMAT_VERSION == 3
    assert meta["digest"] == _container.manifest_digest(meta)
    assert set(meta["folders"]["blob"]) == {"config.json", "sub/weights.bin"}
    np.testing.assert_array_equal(
        reader.array("a.values", (np.dtype(np.float32),), 1, (6,), finite=True),
        np.arange(6))
    M = reader.sparse("m", "csc", (5, 4), (np.dtype(np.float32),), canonical=True)
    assert M.shape == (5, 4) and M.nnz == 10
    assert reader.folder("blob") == os.path.join(str(path), "blob")
    reader.check_all_used()


def test_reformatted_manifest_still_verifies_but_edits_do_not(tmp_path):
    path = tmp_path / "c"
    _write(path)
    meta_file = path / "skxmr_model.json"
    meta = json.loads(meta_file.read_text())
    meta_file.write_text(json.dumps(meta, indent=4, sort_keys=True))  # same content
    Reader(str(path))
    meta["attributes"]["label"] = "e"
    meta_file.write_text(json.dumps(meta))
    with pytest.raises(ModelFormatError, match="checksum mismatch"):
        Reader(str(path))
    Reader(str(path), verify=False)  # integrity only: verify=False reads it


def test_arrays_are_checked_against_the_manifest(tmp_path):
    path = tmp_path / "c"
    _write(path)
    reader = Reader(str(path))
    with pytest.raises(ModelFormatError, match="not allowed for this array"):
        reader.array("a.values", (np.dtype(np.float64),), 1)
    with pytest.raises(ModelFormatError, match=r"shape \(6,\) where \(7,\)"):
        reader.array("a.values", (np.dtype(np.float32),), 1, (7,))
    with pytest.raises(ModelFormatError, match="missing from"):
        reader.array("b", "f", 1)
    with pytest.raises(ModelFormatError, match=r"unknown entries \['m\.data"):
        reader.check_all_used()


def test_folder_contents_are_checked(tmp_path):
    path = tmp_path / "c"
    _write(path, {"blob": _fill})
    weights = path / "blob" / "sub" / "weights.bin"
    weights.write_bytes(b"\x01" * 100)
    with pytest.raises(ModelFormatError, match=r"weights\.bin: checksum mismatch"):
        Reader(str(path)).folder("blob")
    Reader(str(path), verify=False).folder("blob")
    (path / "blob" / "extra").symlink_to("/etc/passwd")
    with pytest.raises(ModelFormatError, match="symbolic link"):
        Reader(str(path), verify=False).folder("blob")
    (path / "blob" / "extra").unlink()
    weights.unlink()
    with pytest.raises(ModelFormatError, match=r"missing \['sub/weights\.bin'\]"):
        Reader(str(path), verify=False).folder("blob")


def test_writer_creates_files_exclusively(tmp_path):
    file = tmp_path / "x.npy"
    file.write_bytes(b"mine")
    with pytest.raises(FileExistsError):
        _container.write_array(str(file), np.arange(3))
    assert file.read_bytes() == b"mine"  # never opened for writing
    with pytest.raises(ValueError, match="invalid or repeated"):
        Writer().add("../escape", np.arange(3))
    with pytest.raises(TypeError, match="cannot be saved"):
        Writer().add("objects", np.array([object()]))


def test_complete_model_means_the_manifest_lists_exactly_its_files(tmp_path):
    path = tmp_path / "c"
    _write(path, {"blob": _fill})
    assert _container.is_complete_model(str(path))
    (path / "blob" / "more.txt").write_text("user data")
    assert not _container.is_complete_model(str(path))
    with pytest.raises(FileExistsError, match="not an skxmr model"):
        _write(path)
    assert (path / "blob" / "more.txt").read_text() == "user data"
    (path / "blob" / "more.txt").unlink()
    _write(path)  # complete again: replaced
    assert not (path / "blob").exists()
    assert sorted(os.listdir(tmp_path)) == ["c"]


def test_a_failed_save_leaves_nothing(tmp_path):
    def broken(folder):
        raise RuntimeError("no space left")

    with pytest.raises(RuntimeError, match="no space"):
        _write(tmp_path / "c", {"blob": broken})
    assert os.listdir(tmp_path) == []
