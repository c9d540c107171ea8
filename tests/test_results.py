"""Results made elsewhere open only for the model and data they were computed for."""

import io
import json
import zipfile

import numpy as np
import pytest

from pruning_core import DiskCache
from pruning_core.curves import CurveParams, compute_curves
from pruning_core.errors import BhpvasError
from pruning_core.results import open_results, open_results_zip, shipped_results, write_results


@pytest.fixture(scope="module")
def written(tiny_bert, tiny_bundle, tmp_path_factory):
    data, bundle = tiny_bundle
    curves = compute_curves(
        tiny_bert,
        data,
        bundle,
        CurveParams(step_fraction=0.25, random_seeds=2, refine_knee=False, strategies=("importance",)),
        cache=DiskCache(enabled=False),
    )
    folder = write_results(tmp_path_factory.mktemp("results"), tiny_bert, data, data, bundle, curves, "test")
    return data, bundle, curves, folder


def test_a_results_folder_opens_for_its_own_model_and_data(tiny_bert, written):
    data, bundle, curves, folder = written
    opened = open_results(folder, tiny_bert, data, data)
    assert np.allclose(opened.bundle.importance.normalized, bundle.importance.normalized, equal_nan=True)
    assert opened.curves.knee_table() == curves.knee_table()
    assert opened.manifest["model_fingerprint"] == tiny_bert.fingerprint and "analysis" in opened.describe()


def test_other_data_or_another_model_is_refused_with_a_clear_message(tiny_bert, tiny_dirs, written):
    from pruning_core import load_model

    data, _, _, folder = written
    other_data = data.subset(range(len(data) - 1), name="fewer rows")
    with pytest.raises(BhpvasError, match="were computed for the data"):
        open_results(folder, tiny_bert, other_data, data)
    roberta = load_model(tiny_dirs["roberta"])
    with pytest.raises(BhpvasError, match="were computed for the model"):
        open_results(folder, roberta, data, data)


def test_a_zip_of_the_folder_opens_and_junk_is_refused(tiny_bert, written, tmp_path):
    data, bundle, _, folder = written
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for path in folder.iterdir():
            archive.write(path, f"results/{path.name}")
        archive.writestr("../../evil.txt", "ignored")
    opened = open_results_zip(buffer.getvalue(), "results.zip", tiny_bert, data, data)
    assert opened.curves is not None and opened.bundle is not None and opened.source == "results.zip"
    with pytest.raises(BhpvasError, match="not a zip"):
        open_results_zip(b"plain text", "notes.zip", tiny_bert, data, data)
    (tmp_path / "bundle.json").write_text(json.dumps({"x": 1}))
    with pytest.raises(BhpvasError, match="manifest.json"):
        open_results(tmp_path, tiny_bert, data, data)


def test_shipped_results_do_not_attach_to_a_tiny_model(tiny_bert, tiny_bundle):
    data, _ = tiny_bundle
    assert shipped_results(tiny_bert, data, data) is None
