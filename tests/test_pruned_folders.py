"""Where the app keeps a pruned checkpoint, and the zip a user downloads."""

from __future__ import annotations

import io
import zipfile

from pruning_core.pruned_folders import pruned_folder, zip_folder


def test_one_folder_per_model_and_scheme(tmp_path):
    a = pruned_folder("model-a", "0.1", tmp_path)
    assert a == pruned_folder("model-a", "0.1", tmp_path) and a.parent == tmp_path / "pruned"
    assert len({a, pruned_folder("model-b", "0.1", tmp_path), pruned_folder("model-a", "0.2", tmp_path)}) == 3


def test_the_default_root_is_the_result_cache(isolated_cache):
    assert pruned_folder("m", "0.1").parent == isolated_cache / "pruned"


def test_zip_holds_every_file_under_the_folder_name(tmp_path):
    folder = tmp_path / "model"
    (folder / "sub").mkdir(parents=True)
    (folder / "config.json").write_text("{}")
    (folder / "sub" / "weights.bin").write_bytes(b"\x00\x01")
    with zipfile.ZipFile(io.BytesIO(zip_folder(folder))) as archive:
        assert sorted(archive.namelist()) == ["model/config.json", "model/sub/weights.bin"]
        assert archive.read("model/sub/weights.bin") == b"\x00\x01"
