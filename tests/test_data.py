"""Datasets: bundled SST-2, CSV/TSV/JSONL with inferred or named columns, pairs, and every error case."""

from __future__ import annotations

import json

import numpy as np
import pytest

from pruning_core import DataError, load_dataset
from pruning_core.data import dataset_from_bytes, map_labels

LABEL2ID = {"negative": 0, "positive": 1}


def test_bundled_sst2_dev_and_train():
    dev = load_dataset("sst2")
    assert len(dev) == 872 and dev.name == "sst2:dev"
    assert set(dev.labels) == {0, 1}
    assert dev.texts[0].startswith("it 's a charming")
    train = load_dataset("sst2:train", max_rows=100)
    assert len(train) == 100
    assert load_dataset("sst2").fingerprint == dev.fingerprint != train.fingerprint


def test_csv_with_inferred_columns_and_string_labels(tmp_path):
    path = tmp_path / "reviews.csv"
    path.write_text('text,label\n"great, really great",positive\nawful,Negative\n')
    ds = load_dataset(path)
    assert ds.texts == ("great, really great", "awful")
    assert list(ds.label_ids(LABEL2ID, 2)) == [1, 0]


def test_named_columns_and_case_insensitive_match(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text("id,Review,Stars\n1,good,1\n2,bad,0\n")
    ds = load_dataset(path, text_column="review", label_column="stars")
    assert ds.texts == ("good", "bad") and ds.text_columns == ("Review",)


def test_jsonl_and_sentence_pairs(tmp_path):
    path = tmp_path / "pairs.jsonl"
    rows = [{"sentence1": "a man eats", "sentence2": "someone eats", "label": 1}, {"sentence1": "x", "sentence2": "y", "label": 0}]
    path.write_text("\n".join(json.dumps(r) for r in rows))
    ds = load_dataset(path)
    assert ds.is_pair and ds.text_pairs == ("someone eats", "y")
    explicit = load_dataset(path, text_column="sentence1", text_pair_column="sentence2", label_column="label")
    assert explicit.fingerprint == ds.fingerprint


def test_tsv_without_quoting(tmp_path):
    path = tmp_path / "d.tsv"
    path.write_text('sentence\tlabel\n"quoted" start\t1\nplain\t0\n')
    assert load_dataset(path).texts[0] == '"quoted" start'


@pytest.mark.parametrize(
    "content, filename, kwargs, message",
    [
        (b"text,label\nhello,1\n", "d.csv", {"label_column": "lable"}, "no label column 'lable'"),
        (b"review,stars,other\nhello,1,x\n", "d.csv", {}, "Could not tell which column"),
        (b"", "d.csv", {}, "empty"),
        (b"text,label\n", "d.csv", {}, "no data rows"),
        (b"text,label\ncaf\xe9,1\n", "d.csv", {}, "not valid UTF-8"),
        (b"PK\x03\x04\x14\x00\x00\x00binary", "d.csv", {}, "binary file"),
        (b"\x00\x01\x02text,label", "d.csv", {}, "binary file"),
        (b"text,label\nhello,\n", "d.csv", {}, "no value in label column"),
        (b"text,label\nhello,1,extra\n", "d.csv", {}, "has 3 fields"),
        (b'{"text": "a", "label": 1}\nnot json\n', "d.jsonl", {}, "line 2 is not valid JSON"),
        (b"text,label\nhello,1\n", "d.xlsx", {}, "Unsupported data file type"),
    ],
)
def test_data_errors_say_what_to_fix(content, filename, kwargs, message):
    with pytest.raises(DataError, match=message):
        dataset_from_bytes(content, filename, **kwargs)


def test_missing_file_and_folder(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        load_dataset(tmp_path / "nope.csv")
    with pytest.raises(DataError, match="is a folder"):
        load_dataset(str(tmp_path) + "/")


def test_label_mapping_errors():
    with pytest.raises(DataError, match="not known to the model"):
        map_labels(["positive", "neutral"], LABEL2ID, 2)
    with pytest.raises(DataError, match="mixes numbers and names"):
        map_labels(["1", "positive"], LABEL2ID, 2)
    with pytest.raises(DataError, match="not class ids of this model"):
        map_labels([0, 1, 2], LABEL2ID, 2)
    assert np.array_equal(map_labels(["1", "0", 1], LABEL2ID, 2), [1, 0, 1])
