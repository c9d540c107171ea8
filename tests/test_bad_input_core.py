"""Bad input that crashed with a traceback, or passed silently with a wrong result: each is now
refused with one ``error: ...`` line (exit 2) that says what to fix."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from pruning_core import load_dataset, load_model
from pruning_core.cli import main
from pruning_core.data import map_labels
from pruning_core.errors import DataError, ModelLoadError, SchemeError
from pruning_core.schemes import Scheme


def cli(capsys, *args) -> tuple[int, str]:
    code = main(list(args))
    _, err = capsys.readouterr()
    return code, err


def assert_clear_error(code: int, err: str, phrase: str) -> None:
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2, err
    assert "Traceback" not in err and len(lines) == 1 and lines[0].startswith("error: "), err
    assert phrase in err, err


@pytest.fixture()
def scheme_file(tmp_path):
    path = tmp_path / "scheme.json"
    path.write_text(json.dumps({"num_layers": 3, "num_heads": 4, "pruned": [[0, 1], [1, 2]]}))
    return path


# Item 7: tracebacks.


def test_a_superscript_digit_label_is_a_name_not_a_crash(capsys, tiny_bert_dir, tmp_path):
    assert "²".isdigit()
    with pytest.raises(DataError, match="not known to the model"):
        map_labels(["²", "²"], {"negative": 0, "positive": 1}, 2)
    with pytest.raises(DataError, match="mixes numbers and names"):
        map_labels(["²", "1"], {"negative": 0, "positive": 1}, 2)
    path = tmp_path / "labels.csv"
    path.write_text("text,label\ngood,²\nbad,²\n")
    code, err = cli(capsys, "evaluate", "--model", str(tiny_bert_dir), "--data", str(path), "--no-progress")
    assert_clear_error(code, err, "not known to the model")


@pytest.mark.parametrize(
    "layers, phrase",
    [("1e400", "whole number"), ("3.9", "whole number"), ('"3"', "whole number"), ("true", "whole number"), ("1e9", "no model has")],
)
def test_scheme_layer_counts_that_are_not_whole_numbers_are_refused(layers, phrase, capsys, tiny_bert_dir, tmp_path):
    path = tmp_path / "scheme.json"
    path.write_text(f'{{"num_layers": {layers}, "num_heads": 4, "pruned": [[0, 1]]}}')
    with pytest.raises(SchemeError, match=phrase):
        Scheme.from_file(path)
    code, err = cli(capsys, "evaluate", "--model", str(tiny_bert_dir), "--max-rows", "4", "--scheme", str(path), "--no-progress")
    assert_clear_error(code, err, phrase)


def test_a_whole_float_layer_count_is_accepted(tmp_path):
    path = tmp_path / "scheme.json"
    path.write_text('{"num_layers": 3.0, "num_heads": 4, "pruned": [[0, 1]]}')
    assert Scheme.from_file(path).num_layers == 3


def test_a_scheme_path_that_is_a_folder(capsys, tiny_bert_dir, tmp_path):
    code, err = cli(capsys, "evaluate", "--model", str(tiny_bert_dir), "--max-rows", "4", "--scheme", str(tmp_path), "--no-progress")
    assert_clear_error(code, err, "is a folder")


def test_a_truncated_weights_file(capsys, tiny_bert_dir, tmp_path):
    folder = tmp_path / "truncated"
    shutil.copytree(tiny_bert_dir, folder)
    weights = folder / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    code, err = cli(capsys, "evaluate", "--model", str(folder), "--max-rows", "4", "--no-progress")
    assert_clear_error(code, err, "damaged or incomplete")


def test_prune_out_onto_an_existing_file_keeps_the_file(capsys, tiny_bert_dir, scheme_file, tmp_path):
    target = tmp_path / "notes.txt"
    target.write_text("my notes")
    code, err = cli(capsys, "prune", "--model", str(tiny_bert_dir), "--scheme", str(scheme_file), "--out", str(target))
    assert_clear_error(code, err, "is not a folder")
    assert target.read_text() == "my notes"


def test_prune_out_onto_a_folder_of_other_files_is_refused(capsys, tiny_bert_dir, scheme_file, tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    (folder / "cat.jpg").write_bytes(b"jpeg")
    code, err = cli(capsys, "prune", "--model", str(tiny_bert_dir), "--scheme", str(scheme_file), "--out", str(folder))
    assert_clear_error(code, err, "already holds other files")
    assert [p.name for p in folder.iterdir()] == ["cat.jpg"]


def test_report_with_zero_repeats(capsys, tiny_bert_dir, scheme_file, tmp_path):
    args = ("report", "--model", str(tiny_bert_dir), "--max-rows", "4", "--scheme", str(scheme_file), "--out", str(tmp_path / "r"))
    code, err = cli(capsys, *args, "--repeats", "0", "--no-progress")
    assert_clear_error(code, err, "--repeats must be at least 1")


def test_report_with_zero_repeats_in_the_core(tiny_bert, sst2_small, tmp_path):
    from pruning_core.report import pruning_report

    scheme = Scheme(3, 4, frozenset({(0, 1)}))
    with pytest.raises(Exception, match="repeats must be a whole number of at least 1"):
        pruning_report(tiny_bert, sst2_small, scheme, tmp_path / "r", repeats=0)
    assert not (tmp_path / "r").exists()


def test_a_cache_entry_that_is_a_folder_is_replaced(tiny_bert, sst2_small, tmp_path):
    from pruning_core import DiskCache, evaluate

    cache = DiskCache(tmp_path / "cache")
    first = evaluate(tiny_bert, sst2_small, cache=cache)
    (entry,) = (tmp_path / "cache").glob("*.npz")
    entry.unlink()
    entry.mkdir()
    (entry / "inside").write_text("x")
    again = evaluate(tiny_bert, sst2_small, cache=cache)
    assert not again.from_cache and np.array_equal(again.preds, first.preds)
    assert entry.is_file() and evaluate(tiny_bert, sst2_small, cache=cache).from_cache


@pytest.mark.parametrize("option", ["--model", "--data", "--scheme"])
def test_a_nul_byte_in_a_path(option, capsys, tiny_bert_dir, scheme_file):
    values = {"--model": str(tiny_bert_dir), "--data": "sst2", "--scheme": str(scheme_file)}
    values[option] = values[option] + "\x00.csv"
    args = ["evaluate", "--max-rows", "4", "--no-progress"]
    for name, value in values.items():
        args += [name, value]
    code, err = cli(capsys, *args)
    assert_clear_error(code, err, "NUL byte")


def test_a_nul_byte_in_a_path_for_the_policy(monkeypatch, tmp_path):
    from pruning_core.policy import SourcePolicy

    monkeypatch.setenv("BHPVAS_DATA_ROOTS", str(tmp_path))
    monkeypatch.setenv("BHPVAS_MODEL_ROOTS", str(tmp_path))
    with pytest.raises(DataError, match="NUL byte"):
        SourcePolicy.from_env().check_data(f"{tmp_path}/a\x00.csv")
    with pytest.raises(ModelLoadError, match="NUL byte"):
        SourcePolicy.from_env().check(f"{tmp_path}/a\x00")


# Item 8: silent and wrong.


def test_a_model_folder_without_tokenizer_files_is_refused(capsys, tiny_bert_dir, tmp_path):
    folder = tmp_path / "no-tokenizer"
    folder.mkdir()
    for name in ("config.json", "model.safetensors"):
        shutil.copy(tiny_bert_dir / name, folder / name)
    with pytest.raises(ModelLoadError, match="no tokenizer files"):
        load_model(folder)
    code, err = cli(capsys, "evaluate", "--model", str(folder), "--max-rows", "4", "--no-progress")
    assert_clear_error(code, err, "no tokenizer files")


@pytest.fixture(scope="module")
def pruned_dir(tiny_bert, tmp_path_factory):
    from pruning_core.pruning import prune_heads, save_pruned

    return save_pruned(prune_heads(tiny_bert, Scheme(3, 4, frozenset({(0, 1), (1, 2)}))), tmp_path_factory.mktemp("p") / "pruned")


@pytest.mark.parametrize(
    "kept, phrase",
    [
        ([[0, 2, 3], [0, 1, 3]], "for 2 layers"),
        ([[0, 2, 3], [0, 0, 3], [0, 1, 2, 3]], "names a head twice"),
        ([[0, 2, 3], [0, 1, 9], [0, 1, 2, 3]], "outside"),
    ],
)
def test_a_damaged_head_map_is_refused(kept, phrase, pruned_dir, tmp_path):
    from pruning_core.loading import PRUNING_FILE

    folder = tmp_path / "damaged"
    shutil.copytree(pruned_dir, folder)
    meta = json.loads((folder / PRUNING_FILE).read_text())
    assert load_model(pruned_dir).kept_heads == meta["kept_heads"]
    meta["kept_heads"] = kept
    (folder / PRUNING_FILE).write_text(json.dumps(meta))
    with pytest.raises(ModelLoadError, match=phrase):
        load_model(folder)


@pytest.mark.parametrize(
    "name, raw, phrase",
    [
        ("object.jsonl", b'{"text": {"nested": "hi"}, "label": 1}\n', "holds an object, not a text"),
        ("array.jsonl", b'{"text": ["a", "b"], "label": 1}\n', "holds an array, not a text"),
        ("two-labels.csv", b"text,label,label\nfine,1,0\n", "more than one column named 'label'"),
        ("mixed.json", b'[{"text": "fine", "label": 1}, "stray", 5]', "element 1 of the JSON array is a str"),
        ("twice.jsonl", b'{"text": "a", "label": 1, "label": 0}\n', "more than once"),
        ("not-array.json", b"[1, 2]", "element 0 of the JSON array"),
    ],
)
def test_data_that_would_be_read_wrongly_is_refused(name, raw, phrase, tmp_path):
    path = tmp_path / name
    path.write_bytes(raw)
    with pytest.raises(DataError, match=phrase):
        load_dataset(str(path))


def test_a_number_text_still_loads(tmp_path):
    path = tmp_path / "numbers.jsonl"
    path.write_text('{"text": 42, "label": 1}\n')
    assert load_dataset(str(path)).texts == ("42",)
