"""The command line, run in-process: JSON output, pruning round trip, and clear errors."""

from __future__ import annotations

import json

import pytest

from pruning_core.cli import main


def run(capsys, *args) -> tuple[int, dict | None, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, (json.loads(out) if code == 0 and "--json" in args else None), err


@pytest.fixture()
def scheme_file(tmp_path):
    path = tmp_path / "scheme.json"
    path.write_text(json.dumps({"model": "tiny", "num_layers": 3, "num_heads": 4, "pruned": [[0, 1], [1, 0], [1, 1], [1, 2], [1, 3]]}))
    return path


def test_evaluate_prune_and_evaluate_the_pruned_folder(capsys, tiny_bert_dir, scheme_file, tmp_path):
    code, masked, _ = run(
        capsys, "evaluate", "--model", str(tiny_bert_dir), "--max-rows", "40", "--scheme", str(scheme_file), "--json", "--no-progress"
    )
    assert code == 0 and masked["n"] == 40 and masked["heads_pruned"] == 5
    assert {"accuracy", "loss", "agreement"} <= set(masked)
    out = tmp_path / "pruned"
    code, pruned, _ = run(capsys, "prune", "--model", str(tiny_bert_dir), "--scheme", str(scheme_file), "--out", str(out), "--json")
    assert code == 0 and pruned["heads_kept"] == 7 and pruned["parameters_pruned"] < pruned["parameters_full"]
    code, again, _ = run(capsys, "evaluate", "--model", str(out), "--max-rows", "40", "--json", "--no-progress")
    assert code == 0 and again["accuracy"] == masked["accuracy"] and abs(again["loss"] - masked["loss"]) < 1e-4


def test_scheme_for_another_shape_is_refused(capsys, tiny_bert_dir, tmp_path):
    path = tmp_path / "big.json"
    path.write_text(json.dumps({"num_layers": 12, "num_heads": 12, "pruned": [[0, 0]]}))
    code, _, err = run(capsys, "evaluate", "--model", str(tiny_bert_dir), "--scheme", str(path))
    assert code == 2 and "12 layers x 12 heads" in err and "3 x 4" in err and "Traceback" not in err


def test_malformed_scheme_and_bad_data(capsys, tiny_bert_dir, tmp_path):
    path = tmp_path / "bad.json"
    path.write_text("{not json")
    code, _, err = run(capsys, "evaluate", "--model", str(tiny_bert_dir), "--scheme", str(path))
    assert code == 2 and "not valid JSON" in err
    data = tmp_path / "d.csv"
    data.write_text("txt,label\nhello,neutral\n")
    code, _, err = run(capsys, "evaluate", "--model", str(tiny_bert_dir), "--data", str(data))
    assert code == 2 and "not known to the model" in err


def test_attention_for_one_text(capsys, tiny_bert_dir):
    code, result, _ = run(
        capsys, "attention", "--model", str(tiny_bert_dir), "--text", "a fine film", "--layer", "1", "--head", "2", "--json"
    )
    assert code == 0 and result["tokens"] == ["[CLS]", "a", "fine", "film", "[SEP]"]
    assert list(result["attention"]) == ["1.2"] and len(result["attention"]["1.2"]) == 5
    code, _, err = run(capsys, "attention", "--model", str(tiny_bert_dir), "--text", "x", "--layer", "9")
    assert code == 2 and "out of range" in err


def test_attention_statistics_over_data(capsys, tiny_bert_dir):
    code, result, _ = run(capsys, "attention", "--model", str(tiny_bert_dir), "--max-rows", "10", "--json", "--no-progress")
    assert code == 0 and len(result["heads"]) == 12
    head = result["heads"][0]
    assert abs(sum(head[f"to_{n}"] for n in ("cls", "sep", "self", "prev", "next", "other")) - 1) < 1e-3


def test_help_for_every_command(capsys):
    for command in ("prepare-demo", "evaluate", "prune", "attention", "analyze", "curves", "report", "recover"):
        with pytest.raises(SystemExit) as info:
            main([command, "--help"])
        assert info.value.code == 0
        assert "--json" in capsys.readouterr().out


def test_module_docstring_lists_every_command_and_the_policy_note():
    from pruning_core import cli

    for command in cli.COMMANDS:
        assert f"- ``{command}``:" in cli.__doc__, command
    assert "BHPVAS_MODEL_ROOTS" in cli.__doc__ and "BHPVAS_DATA_ROOTS" in cli.__doc__


def test_analyze_curves_and_report_headless(capsys, tiny_bert_dir, scheme_file, tmp_path):
    from pruning_core.analysis import load_bundle
    from pruning_core.curves import load_curves

    common = ["--model", str(tiny_bert_dir), "--max-rows", "40", "--json", "--no-progress"]
    calibrated = [*common, "--calibration-fraction", "0.5"]
    code, summary, _ = run(
        capsys,
        "analyze",
        *calibrated,
        "--out",
        str(tmp_path / "bundle"),
        "--similarity-tokens",
        "300",
        "--role-sentences",
        "20",
        "--alignment-sentences",
        "20",
    )
    assert code == 0 and summary["heads"] == 12
    assert set(summary["ranked"]) == {"importance", "fisher", "loo_loss", "stability", "similarity"}
    assert {"importance~stability", "importance~similarity", "stability~similarity", "importance~loo_loss"} <= set(summary["spearman"])
    assert "20 of 40 rows held out" in summary["calibration"]
    assert set(summary["signal"]) == {"importance", "fisher", "stability", "similarity"}
    bundle = load_bundle(tmp_path / "bundle")
    assert bundle.shape == (3, 4) and len(bundle.scores_table()) == 12
    header = (tmp_path / "bundle" / "scores.csv").read_text().splitlines()[0].split(",")
    for column in (
        "layer",
        "head",
        "importance",
        "stability",
        "similarity",
        "most_similar",
        "entropy",
        "umap_x",
        "umap_y",
        "role_local",
        "p_local",
        "importance_stderr",
        "fisher",
        "loo_loss",
        "loo_accuracy",
    ):
        assert column in header
    code, curves, _ = run(capsys, "curves", *calibrated, "--strategies", "importance,top-first", "--out", str(tmp_path / "curves.json"))
    assert code == 0 and [row["strategy"] for row in curves["knee"]] == ["importance", "top-first"]
    assert "20 of 40 rows held out" in curves["calibration"] and "the other 20 rows" in curves["evaluation"]
    for row in curves["knee"]:
        for kind in ("1pt", "3pt", "nosig"):
            low, high = row[f"k_{kind}_interval"]
            assert low <= high and len(row[f"delta_{kind}"]) == 2 and 0 <= row[f"p_{kind}"] <= 1
    assert set(load_curves(tmp_path / "curves.json").curves) == {"importance", "top-first"}
    code, report, _ = run(capsys, "report", *common, "--scheme", str(scheme_file), "--out", str(tmp_path / "report"), "--repeats", "1")
    assert code == 0 and report["masked_equals_pruned"] and (tmp_path / "report" / "report.html").exists()
    code, _, err = run(capsys, "curves", *common, "--strategies", "nonsense")
    assert code == 2 and "Unknown strategy" in err


BAD_DATA = {
    "misspelled label column": (b"text,label\nhello there,1\n", "d.csv", ["--label-column", "lable"], "has no label column 'lable'"),
    "missing label column": (b"text\nhello there\ngood film\n", "d.csv", [], "has a single column ('text')"),
    "unknown label": (b"text,label\nhello,positive\nbye,neutral\n", "d.csv", [], "are not known to the model"),
    "mixed label types": (b"text,label\nhello,1\nbye,negative\n", "d.csv", [], "mixes numbers and names"),
    "empty file": (b"", "d.csv", [], "is empty"),
    "not UTF-8": ("text,label\ncafé,1\n".encode("latin-1"), "d.csv", [], "is not valid UTF-8"),
    "binary renamed .csv": (b"PK\x03\x04\x14\x00binary", "d.csv", [], "looks like a binary file"),
}


@pytest.mark.parametrize("item", list(BAD_DATA))
def test_bad_data_files_get_a_clear_error(item, capsys, tiny_bert_dir, tmp_path):
    raw, name, extra, phrase = BAD_DATA[item]
    path = tmp_path / name
    path.write_bytes(raw)
    code, _, err = run(capsys, "evaluate", "--model", str(tiny_bert_dir), "--data", str(path), *extra, "--no-progress")
    assert code == 2 and phrase in err and "Traceback" not in err, err


@pytest.mark.parametrize(
    "name, phrase",
    [
        ("missing", "does not exist"),
        ("notes", "is not a model folder"),
        ("gpt2", "Architecture 'gpt2' is not supported"),
        ("encoder", "has no trained classification head"),
    ],
)
def test_bad_model_folders_get_a_clear_error(name, phrase, capsys, bad_model_dirs):
    code, _, err = run(capsys, "evaluate", "--model", str(bad_model_dirs[name]), "--max-rows", "4", "--no-progress")
    assert code == 2 and phrase in err and "Traceback" not in err, err


def test_hub_id_without_network_gets_a_clear_error(capsys, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    code, _, err = run(capsys, "evaluate", "--model", "someone/some-model", "--max-rows", "4", "--no-progress")
    assert code == 2 and "the Hugging Face Hub cannot be reached" in err, err


def test_an_enormous_text_is_truncated_with_a_note(capsys, tiny_bert_dir, tmp_path):
    path = tmp_path / "long.csv"
    path.write_text("text,label\nshort one,1\n" + " ".join(f"w{i % 50}" for i in range(40_000)) + ",0\n")
    code, result, _ = run(capsys, "evaluate", "--model", str(tiny_bert_dir), "--data", str(path), "--json", "--no-progress")
    assert code == 0 and result["n"] == 2
    assert "1 sample(s) longer than 130 tokens were truncated." in result["notices"]
    code = main(["evaluate", "--model", str(tiny_bert_dir), "--data", str(path), "--no-progress"])
    assert code == 0 and "note: 1 sample(s) longer than 130 tokens were truncated." in capsys.readouterr().out


def test_a_scheme_pruning_every_head_evaluates_with_a_note(capsys, tiny_bert_dir, tmp_path):
    path = tmp_path / "every.json"
    path.write_text(json.dumps({"num_layers": 3, "num_heads": 4, "pruned": [[layer, head] for layer in range(3) for head in range(4)]}))
    code, result, _ = run(
        capsys, "evaluate", "--model", str(tiny_bert_dir), "--max-rows", "12", "--scheme", str(path), "--json", "--no-progress"
    )
    assert code == 0 and result["heads_pruned"] == 12
    assert any(n.startswith("Every head is gated off") for n in result["notices"])
    code, _, err = run(
        capsys, "report", "--model", str(tiny_bert_dir), "--max-rows", "12", "--scheme", str(path), "--out", str(tmp_path / "r")
    )
    assert code == 2 and "removes every attention head" in err
