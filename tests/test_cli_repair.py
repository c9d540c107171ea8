"""CLI: prune --repair, curves --repair and recover, headless on a tiny model."""

from __future__ import annotations

import csv
import json

import pytest

from pruning_core import load_dataset
from pruning_core.cli import main
from pruning_core.curves import load_curves
from pruning_core.loading import PRUNING_FILE


def run(capsys, *args) -> tuple[int, dict | None, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, (json.loads(out) if code == 0 and "--json" in args else None), err


@pytest.fixture()
def calibration_file(tmp_path):
    rows = load_dataset("sst2:train", max_rows=60)
    path = tmp_path / "calibration.csv"
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["sentence", "label"])
        writer.writerows(zip(rows.texts, rows.labels))
    return path


@pytest.fixture()
def scheme_file(tmp_path):
    path = tmp_path / "scheme.json"
    path.write_text(json.dumps({"model": "tiny", "num_layers": 3, "num_heads": 4, "pruned": [[0, 1], [1, 0], [1, 1], [1, 2], [1, 3]]}))
    return path


def test_prune_repair_then_recover(capsys, tiny_bert_dir, scheme_file, calibration_file, tmp_path):
    out = tmp_path / "repaired"
    args = ["prune", "--model", str(tiny_bert_dir), "--scheme", str(scheme_file), "--json"]
    code, pruned, _ = run(capsys, *args, "--out", str(out), "--repair", "--calibration", str(calibration_file), "--no-progress")
    assert code == 0 and pruned["heads_kept"] == 7 and pruned["repair"]["variant"] == "full"
    meta = json.loads((out / PRUNING_FILE).read_text())
    assert meta["repair"]["calibration"] == pruned["repair"]["calibration"] and meta["base_model"] == str(tiny_bert_dir.resolve())
    code, plain, _ = run(capsys, *args, "--out", str(tmp_path / "plain"))
    assert code == 0 and plain["parameters_pruned"] == pruned["parameters_pruned"]
    common = ["--max-rows", "40", "--json", "--no-progress"]
    code, evaluated, _ = run(capsys, "evaluate", "--model", str(out), *common)
    assert code == 0 and evaluated["heads_pruned"] == 5
    recovered = tmp_path / "recovered"
    code, result, _ = run(
        capsys,
        "recover",
        "--model",
        str(out),
        "--out",
        str(recovered),
        "--calibration",
        str(calibration_file),
        "--steps",
        "3",
        "--batch-size",
        "8",
        *common,
    )
    assert code == 0 and result["recovery"]["steps_done"] == 3 and result["recovery"]["completed"]
    assert {"accuracy_full", "accuracy_before", "accuracy_after"} <= set(result)
    assert json.loads((recovered / "compensation.json").read_text())["summary"]["kept_heads"] == 7
    code, again, _ = run(capsys, "evaluate", "--model", str(recovered), *common)
    assert code == 0 and again["accuracy"] == result["accuracy_after"]
    code, _, err = run(capsys, "recover", "--model", str(tiny_bert_dir), "--out", str(tmp_path / "x"))
    assert code == 2 and "not a pruned model folder" in err


def test_curves_with_repair(capsys, tiny_bert_dir, calibration_file, tmp_path):
    code, curves, _ = run(
        capsys,
        "curves",
        "--model",
        str(tiny_bert_dir),
        "--max-rows",
        "40",
        "--strategies",
        "importance,repair-aware",
        "--step",
        "0.25",
        "--repair",
        "--calibration",
        str(calibration_file),
        "--out",
        str(tmp_path / "curves.json"),
        "--json",
        "--no-progress",
    )
    assert code == 0
    assert [row["strategy"] for row in curves["knee_repaired"]] == ["importance", "repair-aware"]
    for row in curves["knee_repaired"]:
        assert {"k_nosig_repaired", "k_1pt_interval_repaired", "delta_3pt_repaired", "p_1pt_repaired", "gain_1pt_interval"} <= set(row)
    stored = load_curves(tmp_path / "curves.json")
    repaired = stored.extra["repaired"]["importance"]
    assert repaired["ks"][0] == 0 and repaired["accuracy"][0][0] == stored.full_accuracy
    assert stored.extra["repair"]["calibration"].endswith("calibration.csv")
