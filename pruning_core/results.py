"""Results computed elsewhere, opened for a loaded model: the demo's shipped results, and the
``analyze``/``curves`` outputs of the command line (for example from a GPU box).

A results folder holds an analysis bundle (``bundle.json``, ``arrays.npz``, ``scores.csv``), a
``curves.json``, or both, and a ``manifest.json`` naming the fingerprints they were computed for.
Opening checks those fingerprints against the loaded model and data, so results never attach to
a model or dataset they were not made for. A zip of such a folder opens the same way.
"""

from __future__ import annotations

import io
import json
import tempfile
import time
import zipfile
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from .analysis import AnalysisBundle, AnalysisParams, analyze, load_bundle
from .cache import CODE_VERSION
from .calibration import data_sets
from .curves import CurveParams, Curves, compute_curves, load_curves, strategy_versions
from .data import TextDataset, load_dataset
from .defaults import OFFERED_STRATEGIES
from .errors import BhpvasError
from .loading import LoadedModel, load_model
from .progress import ProgressFn, no_progress, scaled
from .repair_curves import add_repaired_curves
from .sources import ASSETS

DEMO_RESULTS = ASSETS / "demo_results"
MANIFEST = "manifest.json"
RESULT_FILES = ("bundle.json", "arrays.npz", "scores.csv", "curves.json", MANIFEST)
MAX_ZIP_BYTES = 64 * 2**20


@dataclass
class OpenedResults:
    """What a results folder held for this model and data (either part may be missing)."""

    bundle: AnalysisBundle | None
    curves: Curves | None
    manifest: dict[str, Any]
    source: str

    def describe(self) -> str:
        parts = [name for name, value in (("analysis", self.bundle), ("curves", self.curves)) if value is not None]
        made = self.manifest.get("precision", "?")
        return f"{' and '.join(parts)} from {self.source} ({made}, computed {self.manifest.get('created', '?')})"


def manifest_for(lm: LoadedModel, evaluation: TextDataset, calibration: TextDataset, command: str) -> dict[str, Any]:
    """The fingerprints and settings a results folder was computed for."""
    return {
        "format": 1,
        "code_version": CODE_VERSION,
        "model": lm.name,
        "model_fingerprint": lm.fingerprint,
        "evaluation": evaluation.name,
        "evaluation_fingerprint": evaluation.fingerprint,
        "calibration": calibration.name,
        "calibration_fingerprint": calibration.fingerprint,
        "precision": lm.precision,
        "created": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "command": command,
    }


def write_results(
    out_dir: str | Path,
    lm: LoadedModel,
    evaluation: TextDataset,
    calibration: TextDataset,
    bundle: AnalysisBundle | None,
    curves: Curves | None,
    command: str,
) -> Path:
    """Write a results folder (bundle and/or curves and the manifest)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if bundle is not None:
        bundle.save(out)
    if curves is not None:
        curves.save(out / "curves.json")
    manifest = manifest_for(lm, evaluation, calibration, command)
    if bundle is not None:
        manifest["analysis_params"] = asdict(bundle.params)
    if curves is not None:
        manifest["curve_params"] = asdict(curves.params)
        manifest["strategy_versions"] = strategy_versions(curves.params.strategies)
    (out / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    return out


def _mismatch(manifest: dict[str, Any], lm: LoadedModel, evaluation: TextDataset, calibration: TextDataset) -> str | None:
    checks = (
        ("model_fingerprint", lm.fingerprint, f"the model {manifest.get('model', '?')!r}", f"the loaded model {lm.name!r}"),
        ("evaluation_fingerprint", evaluation.fingerprint, f"the data {manifest.get('evaluation', '?')!r}", f"{evaluation.name!r}"),
        ("calibration_fingerprint", calibration.fingerprint, f"the calibration set {manifest.get('calibration', '?')!r}", "this one"),
    )
    for field, actual, theirs, ours in checks:
        if manifest.get(field) != actual:
            return f"were computed for {theirs}, not {ours} (its fingerprint differs)"
    return None


def open_results(path: str | Path, lm: LoadedModel, evaluation: TextDataset, calibration: TextDataset) -> OpenedResults:
    """Open a results folder or a zip of one for ``lm`` on these sets; a clear error when they do not match."""
    path = Path(path)
    if path.is_file() and zipfile.is_zipfile(path):
        return open_results_zip(path.read_bytes(), path.name, lm, evaluation, calibration)
    if not path.is_dir():
        raise BhpvasError(
            f"{path} is neither a results folder nor a zip of one. Write one with `python -m pruning_core analyze --out DIR`."
        )
    manifest_file = path / MANIFEST
    if not manifest_file.is_file():
        raise BhpvasError(
            f"{path} has no {MANIFEST}: it does not say which model and data its results belong to. "
            "Write results with `python -m pruning_core analyze --out DIR` or `curves --out DIR/curves.json`."
        )
    try:
        manifest = json.loads(manifest_file.read_text())
    except (OSError, ValueError) as exc:
        raise BhpvasError(f"{manifest_file} is not readable JSON ({exc}).") from None
    problem = _mismatch(manifest, lm, evaluation, calibration)
    if problem:
        raise BhpvasError(f"The results in {path.name} {problem}. Open them with the model and data they were computed for, or recompute.")
    bundle = load_bundle(path) if (path / "bundle.json").is_file() else None
    curves = load_curves(path / "curves.json") if (path / "curves.json").is_file() else None
    if bundle is None and curves is None:
        raise BhpvasError(f"{path} holds neither an analysis bundle nor curves.json.")
    return OpenedResults(bundle, curves, manifest, str(path))


def open_results_zip(raw: bytes, name: str, lm: LoadedModel, evaluation: TextDataset, calibration: TextDataset) -> OpenedResults:
    """Open an uploaded zip of a results folder: only the known files are read, wherever they sit."""
    if len(raw) > MAX_ZIP_BYTES:
        raise BhpvasError(f"{name} is larger than {MAX_ZIP_BYTES // 2**20} MiB; results zips are small (scores and curves only).")
    try:
        archive = zipfile.ZipFile(io.BytesIO(raw))
    except zipfile.BadZipFile:
        raise BhpvasError(f"{name} is not a zip file.") from None
    with archive, tempfile.TemporaryDirectory(prefix="bhpvas-results-") as folder:
        found = 0
        for info in archive.infolist():
            base = Path(info.filename).name
            if base in RESULT_FILES and not info.is_dir():
                if info.file_size > MAX_ZIP_BYTES:
                    raise BhpvasError(f"{name}: {base} is too large for a results file.")
                (Path(folder) / base).write_bytes(archive.read(info))
                found += 1
        if not found:
            raise BhpvasError(f"{name} holds none of {', '.join(RESULT_FILES)}.")
        opened = open_results(folder, lm, evaluation, calibration)
    return OpenedResults(opened.bundle, opened.curves, opened.manifest, name)


def shipped_results(lm: LoadedModel, evaluation: TextDataset, calibration: TextDataset) -> OpenedResults | None:
    """The demo's shipped results when they belong to exactly this model and these sets, else None."""
    if not (DEMO_RESULTS / MANIFEST).is_file():
        return None
    try:
        opened = open_results(DEMO_RESULTS, lm, evaluation, calibration)
    except BhpvasError:
        return None
    return replace(opened, source="the results shipped with the demo")


def demo_sets() -> tuple[TextDataset, TextDataset, dict[str, str]]:
    """The demo's evaluation set (SST-2 dev), calibration set and their descriptions."""
    sets = data_sets("sst2", load_dataset("sst2"))
    return sets.evaluation, sets.calibration, sets.describe()


def write_demo_results(
    out_dir: Path = DEMO_RESULTS, precision: str | None = None, progress: ProgressFn | None = None, repair: bool = True
) -> Path:
    """Compute the demo's analysis, default curves and (``repair``) every strategy's "+ repair"
    curve, and write them where the app finds them.

    ``python -m pruning_core ship-demo``; the precision defaults to the hardware's.
    """
    report = progress or no_progress
    lm = load_model("demo", precision=precision)
    evaluation, calibration, described = demo_sets()
    end = 0.6 if repair else 1.0
    bundle = analyze(lm, calibration, AnalysisParams(), progress=scaled(report, 0.0, 0.2), calibration=described["calibration"])
    curves = compute_curves(
        lm,
        evaluation,
        bundle,
        CurveParams(strategies=OFFERED_STRATEGIES),
        progress=scaled(report, 0.2, end),
        calibration=calibration,
        descriptions=described,
    )
    if repair:
        add_repaired_curves(lm, evaluation, calibration, curves, progress=scaled(report, end, 1.0))
    command = "python -m pruning_core ship-demo" + (f" --precision {precision}" if precision else "") + ("" if repair else " --no-repair")
    return write_results(out_dir, lm, evaluation, calibration, bundle, curves, command)
