"""Labelled text datasets: the bundled SST-2, CSV/TSV/JSONL files, and hub datasets when online.

Every problem raises :class:`DataError` with a message that says what to fix.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .errors import DataError
from .safe_files import read_user_file
from .sources import BUNDLED

if TYPE_CHECKING:
    from .policy import SourcePolicy


TEXT_COLUMN_NAMES = ("sentence", "text", "sentence1", "question", "premise", "review", "content", "document", "question1")
PAIR_COLUMN_NAMES = {"sentence1": "sentence2", "question": "sentence", "premise": "hypothesis", "question1": "question2"}
LABEL_COLUMN_NAMES = ("label", "labels", "target", "class", "gold_label", "y", "sentiment")
MAX_FILE_BYTES = 512 * 1024 * 1024
# One text may be very long (the model truncates it, with a notice); Python's csv module refuses
# fields over 128 KiB by default, so allow any field that fits in the file size limit.
csv.field_size_limit(max(csv.field_size_limit(), MAX_FILE_BYTES))


@dataclass(frozen=True)
class TextDataset:
    """Texts (optionally sentence pairs) with their raw labels, as read from the source."""

    name: str
    texts: tuple[str, ...]
    labels: tuple[Any, ...]
    text_pairs: tuple[str, ...] | None = None
    text_columns: tuple[str, ...] = ("sentence",)
    label_column: str = "label"
    notices: tuple[str, ...] = ()
    fingerprint: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        if not self.fingerprint:
            fingerprint = _fingerprint(self.texts, self.text_pairs, self.labels, self.text_columns, self.label_column)
            object.__setattr__(self, "fingerprint", fingerprint)

    def __len__(self) -> int:
        return len(self.texts)

    @property
    def is_pair(self) -> bool:
        return self.text_pairs is not None

    def subset(self, indices: Sequence[int], name: str | None = None) -> TextDataset:
        """A dataset of the given rows, in the given order."""
        idx = [int(i) for i in indices]
        return TextDataset(
            name=name or f"{self.name}[{len(idx)} rows]",
            texts=tuple(self.texts[i] for i in idx),
            labels=tuple(self.labels[i] for i in idx),
            text_pairs=None if self.text_pairs is None else tuple(self.text_pairs[i] for i in idx),
            text_columns=self.text_columns,
            label_column=self.label_column,
            notices=self.notices,
        )

    def label_ids(self, label2id: Mapping[str, int], num_labels: int) -> np.ndarray:
        """Map the raw labels to the model's class ids (see :func:`map_labels`)."""
        return map_labels(self.labels, label2id, num_labels)


def _fingerprint(
    texts: Sequence[str], pairs: Sequence[str] | None, labels: Sequence[Any], text_columns: Sequence[str] = (), label_column: str = ""
) -> str:
    """Content hash that tells any two different datasets apart (cache keys depend on it).

    Every field is length-prefixed, so no text can imitate a separator or a row boundary; the
    header records the row count, whether the data are sentence pairs and the columns used, and
    each label is hashed with its type (``1`` and ``"1"`` differ).
    """
    digest = hashlib.sha256()
    header = {"format": 2, "rows": len(texts), "pairs": pairs is not None, "text_columns": list(text_columns), "label_column": label_column}
    _hash_field(digest, json.dumps(header, sort_keys=True).encode())
    for i, text in enumerate(texts):
        _hash_field(digest, text.encode("utf-8", "surrogatepass"))
        if pairs is not None:
            _hash_field(digest, pairs[i].encode("utf-8", "surrogatepass"))
        label = labels[i]
        _hash_field(digest, f"{type(label).__name__}:{label!r}".encode("utf-8", "surrogatepass"))
    return digest.hexdigest()[:24]


def _hash_field(digest: Any, data: bytes) -> None:
    digest.update(len(data).to_bytes(8, "little"))
    digest.update(data)


def _as_int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        stripped = value.strip()
        digits = stripped[1:] if stripped.startswith("-") else stripped
        # isdigit() also accepts characters such as "²" that int() refuses; only ASCII digits are ids.
        if digits.isascii() and digits.isdigit():
            return int(stripped)
    return None


def map_labels(labels: Sequence[Any], label2id: Mapping[str, int], num_labels: int) -> np.ndarray:
    """Map raw labels to class ids: integers are taken as ids, strings go through ``label2id``.

    Matching of names is case-insensitive. Mixed integer and name labels are refused, as is any
    label the model does not know.
    """
    if len(labels) == 0:
        raise DataError("The dataset has no rows.")
    as_ints = [_as_int(v) for v in labels]
    n_int = sum(v is not None for v in as_ints)
    names = {str(k).strip().lower(): int(v) for k, v in label2id.items()}
    known = ", ".join(f"{k} (id {v})" for k, v in sorted(label2id.items(), key=lambda kv: int(kv[1])))
    if n_int == len(labels):
        ids = np.asarray(as_ints, dtype=np.int64)
        bad = sorted({int(v) for v in ids if v < 0 or v >= num_labels})
        if bad:
            raise DataError(
                f"Label(s) {bad[:5]} are not class ids of this model, which has {num_labels} classes "
                f"(ids 0..{num_labels - 1}: {known}). Fix the label column or choose a matching model."
            )
        return ids
    if n_int > 0:
        example_int = next(labels[i] for i, v in enumerate(as_ints) if v is not None)
        example_str = next(labels[i] for i, v in enumerate(as_ints) if v is None)
        raise DataError(
            f"The label column mixes numbers and names (e.g. {example_int!r} and {example_str!r}). "
            f"Use one kind throughout: class ids 0..{num_labels - 1} or the model's label names ({known})."
        )
    ids = np.empty(len(labels), dtype=np.int64)
    unknown: list[str] = []
    for i, value in enumerate(labels):
        key = str(value).strip().lower()
        if key in names:
            ids[i] = names[key]
        elif str(value) not in unknown:
            unknown.append(str(value))
    if unknown:
        raise DataError(
            f"Label(s) {unknown[:5]} are not known to the model, whose labels are: {known}. "
            "Rename the labels in the file to these names, or use class ids."
        )
    return ids


def _read_text(path: str | Path, policy: SourcePolicy | None = None, always_allowed: tuple[Path, ...] = ()) -> str:
    raw = read_user_file(path, policy, MAX_FILE_BYTES, always_allowed)
    name = Path(str(path)).name
    if not raw:
        raise DataError(f"Data file {name} is empty. It needs a header row and at least one labelled row.")
    return decode_bytes(raw, name)


def decode_bytes(raw: bytes, name: str) -> str:
    """Decode a data file as UTF-8, refusing binary content with a clear message."""
    head = raw[:8192]
    if b"\x00" in head or head.startswith((b"PK\x03\x04", b"\x89PNG", b"%PDF", b"\x1f\x8b")):
        raise DataError(
            f"{name} looks like a binary file (e.g. a spreadsheet, archive or image), not text. "
            "Export it as CSV, TSV or JSONL (UTF-8) and try again."
        )
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DataError(
            f"{name} is not valid UTF-8 (byte {exc.start}). Re-save it as UTF-8, e.g. `iconv -f latin1 -t utf-8 in.csv > out.csv`."
        ) from None


def _rows_from_text(text: str, fmt: str, name: str) -> tuple[list[str], list[dict[str, Any]]]:
    if not text.strip():
        raise DataError(f"Data file {name} is empty. It needs a header row and at least one labelled row.")
    if fmt == "jsonl":
        rows: list[dict[str, Any]] = []
        stripped = text.lstrip()
        if stripped.startswith("["):
            try:
                data = json.loads(stripped, object_pairs_hook=_unique_keys(name))
            except json.JSONDecodeError as exc:
                raise DataError(f"{name} is not valid JSON: {exc.msg} at line {exc.lineno}.") from None
            if not isinstance(data, list):
                raise DataError(f"{name} is not a JSON array of objects.")
            for index, row in enumerate(data):
                if not isinstance(row, dict):
                    raise DataError(
                        f"{name}: element {index} of the JSON array is {_json_kind(row)}, not an object with named fields. "
                        'Every element must be an object like {"text": ..., "label": ...}.'
                    )
            rows = data
        else:
            for lineno, line in enumerate(text.splitlines(), start=1):
                if not line.strip():
                    continue
                try:
                    row = json.loads(line, object_pairs_hook=_unique_keys(f"{name} line {lineno}"))
                except json.JSONDecodeError as exc:
                    raise DataError(f"{name} line {lineno} is not valid JSON ({exc.msg}). Each line must be one JSON object.") from None
                if not isinstance(row, dict):
                    raise DataError(f"{name} line {lineno} is not a JSON object with named fields.")
                rows.append(row)
        if not rows:
            raise DataError(f"{name} has no JSON objects.")
        columns = list(dict.fromkeys(k for r in rows for k in r))
        return columns, rows
    delimiter = "\t" if fmt == "tsv" else ","
    quoting = csv.QUOTE_NONE if fmt == "tsv" else csv.QUOTE_MINIMAL
    reader = csv.reader(io.StringIO(text), delimiter=delimiter, quoting=quoting)
    try:
        header = next(reader)
        body = list(reader)
    except csv.Error as exc:
        raise DataError(f"{name} could not be parsed as {fmt.upper()}: {exc}.") from None
    header = [h.strip() for h in header]
    # Unnamed columns (e.g. trailing separators) cannot be chosen by name, so only named ones must be unique.
    repeated = sorted({h for h in header if h and header.count(h) > 1})
    if repeated:
        raise DataError(
            f"{name} has more than one column named {', '.join(map(repr, repeated))}. Rename them so every column name is unique."
        )
    if len(header) < 2:
        other = "comma" if fmt == "tsv" else "tab"
        raise DataError(
            f"{name} has a single column ({header[0][:40]!r}) in its header; it needs a text column and a label "
            f"column. If the file is {other}-separated, give it a .{'csv' if fmt == 'tsv' else 'tsv'} extension."
        )
    rows = []
    for lineno, values in enumerate(body, start=2):
        if not any(v.strip() for v in values):
            continue
        if len(values) != len(header):
            raise DataError(
                f"{name} line {lineno} has {len(values)} fields but the header has {len(header)}. "
                "Quote fields that contain the separator, or fix the line."
            )
        rows.append(dict(zip(header, values, strict=False)))
    if not rows:
        raise DataError(f"{name} has a header but no data rows.")
    return header, rows


def _unique_keys(where: str):
    """A JSON object hook that refuses an object naming one field twice (JSON would keep the last)."""

    def build(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        keys = [k for k, _ in pairs]
        repeated = sorted({k for k in keys if keys.count(k) > 1})
        if repeated:
            raise DataError(f"{where}: an object has the field {', '.join(map(repr, repeated))} more than once. Keep one.")
        return dict(pairs)

    return build


def _json_kind(value: Any) -> str:
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "an array"
    if value is None:
        return "null"
    return f"a {type(value).__name__} ({str(value)[:30]!r})"


def _text_value(value: Any, row: int, column: str, name: str) -> str:
    if value is None:
        return ""
    if isinstance(value, (dict, list)):
        raise DataError(
            f"Row {row} of {name}: the text column {column!r} holds {_json_kind(value)}, not a text. "
            "Put the text itself in that field, or choose another text column."
        )
    return str(value)


def _pick(columns: Sequence[str], wanted: str | None, candidates: Sequence[str], role: str, name: str) -> str | None:
    lower = {c.lower(): c for c in columns}
    if wanted is not None:
        if wanted in columns:
            return wanted
        if wanted.lower() in lower:
            return lower[wanted.lower()]
        close = [c for c in columns if wanted.lower()[:3] in c.lower()]
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise DataError(f"{name} has no {role} column {wanted!r}; its columns are {list(columns)}.{hint}")
    for cand in candidates:
        if cand in lower:
            return lower[cand]
    return None


def dataset_from_rows(
    rows: Sequence[Mapping[str, Any]],
    columns: Sequence[str],
    name: str,
    text_column: str | None = None,
    text_pair_column: str | None = None,
    label_column: str | None = None,
) -> TextDataset:
    """Build a dataset from parsed rows, inferring columns where unambiguous."""
    label_col = _pick(columns, label_column, LABEL_COLUMN_NAMES, "label", name)
    text_col = _pick(columns, text_column, TEXT_COLUMN_NAMES, "text", name)
    remaining = [c for c in columns if c not in (label_col, text_col)]
    if text_col is None and label_col is not None and len(remaining) == 1:
        text_col = remaining[0]
    if label_col is None and text_col is not None and len(remaining) == 1:
        label_col = remaining[0]
    if text_col is None or label_col is None:
        missing = " and ".join(r for r, c in (("text", text_col), ("label", label_col)) if c is None)
        raise DataError(
            f"Could not tell which column is the {missing} in {name}; its columns are {list(columns)}. "
            "Name them explicitly (CLI: --text-column/--label-column; app: the column pickers)."
        )
    pair_col = text_pair_column
    if pair_col is not None:
        pair_col = _pick(columns, pair_col, (), "second text", name)
    elif text_column is None and text_col.lower() in PAIR_COLUMN_NAMES:
        partner = PAIR_COLUMN_NAMES[text_col.lower()]
        pair_col = next((c for c in columns if c.lower() == partner), None)
    if text_col == label_col or pair_col in (text_col, label_col):
        raise DataError(f"The text, second-text and label columns of {name} must be different columns.")
    texts: list[str] = []
    pairs: list[str] | None = [] if pair_col else None
    labels: list[Any] = []
    for i, row in enumerate(rows, start=1):
        label = row.get(label_col)
        if label is None or (isinstance(label, str) and not label.strip()):
            raise DataError(f"Row {i} of {name} has no value in label column {label_col!r}. Fill it in or drop the row.")
        if isinstance(label, (dict, list)):
            raise DataError(f"Row {i} of {name}: the label column {label_col!r} holds {_json_kind(label)}; a label is a class id or name.")
        texts.append(_text_value(row.get(text_col), i, text_col, name))
        if pairs is not None:
            pairs.append(_text_value(row.get(pair_col), i, pair_col, name))
        labels.append(label.strip() if isinstance(label, str) else label)
    notices = []
    empty = sum(1 for t in texts if not t.strip())
    if empty:
        notices.append(f"{empty} row(s) have an empty text.")
    return TextDataset(
        name=name,
        texts=tuple(texts),
        labels=tuple(labels),
        text_pairs=None if pairs is None else tuple(pairs),
        text_columns=(text_col,) if pair_col is None else (text_col, pair_col),
        label_column=label_col,
        notices=tuple(notices),
    )


def _format_of(name: str) -> str:
    suffix = Path(name).suffix.lower()
    if suffix in (".tsv", ".tab"):
        return "tsv"
    if suffix in (".jsonl", ".json", ".ndjson"):
        return "jsonl"
    if suffix in (".csv", ".txt", ""):
        return "csv"
    raise DataError(f"Unsupported data file type {suffix!r} for {name}. Use .csv, .tsv or .jsonl.")


def dataset_from_bytes(
    raw: bytes,
    filename: str,
    text_column: str | None = None,
    text_pair_column: str | None = None,
    label_column: str | None = None,
) -> TextDataset:
    """Parse an uploaded file's bytes (format from the file name's extension)."""
    fmt = _format_of(filename)
    if not raw:
        raise DataError(f"Data file {filename} is empty. It needs a header row and at least one labelled row.")
    columns, rows = _rows_from_text(decode_bytes(raw, filename), fmt, filename)
    return dataset_from_rows(rows, columns, filename, text_column, text_pair_column, label_column)


def file_columns(raw: bytes, filename: str) -> list[str]:
    """The column names of an uploaded file (for column pickers)."""
    columns, _ = _rows_from_text(decode_bytes(raw, filename), _format_of(filename), filename)
    return columns


def columns_of_file(path: str | Path, policy: SourcePolicy | None = None, always_allowed: tuple[Path, ...] = ()) -> list[str]:
    """The column names of a data file on the server, read through :func:`read_user_file`
    (policy, regular-file and size checks first), for the app's "File on the server"."""
    name = Path(str(path)).name
    return file_columns(read_user_file(path, policy, MAX_FILE_BYTES, always_allowed), name)


def _load_hub(source: str, split: str, text_column, text_pair_column, label_column) -> TextDataset:
    try:
        import datasets  # type: ignore[import-not-found]
    except ImportError:
        raise DataError(
            f"{source!r} is neither a bundled dataset (sst2, sst2:train) nor an existing file. "
            "To load hub datasets install the `datasets` package (pip install datasets) and make sure you are online."
        ) from None
    try:
        ds = datasets.load_dataset(source, split=split)
    except Exception as exc:  # network, unknown id, bad split: all reported the same way
        raise DataError(
            f"Could not load hub dataset {source!r} (split {split!r}): {type(exc).__name__}: {str(exc)[:300]}. "
            "Check the id and split, and that this machine can reach the Hugging Face Hub; or use a local file."
        ) from None
    columns = list(ds.column_names)
    rows = [dict(r) for r in ds]
    label_feature = ds.features.get(label_column or "label")
    names = getattr(label_feature, "names", None)
    if names:
        col = label_column or "label"
        for row in rows:
            row[col] = names[row[col]] if isinstance(row[col], int) and row[col] >= 0 else row[col]
    return dataset_from_rows(rows, columns, f"{source}:{split}", text_column, text_pair_column, label_column)


def load_dataset(
    source: str | Path = "sst2",
    text_column: str | None = None,
    text_pair_column: str | None = None,
    label_column: str | None = None,
    split: str = "validation",
    max_rows: int | None = None,
    policy: SourcePolicy | None = None,
    always_allowed: tuple[Path, ...] = (),
) -> TextDataset:
    """Load a labelled dataset.

    ``source`` is ``sst2`` (bundled GLUE SST-2 dev, the default evaluation set), ``sst2:train``,
    a path to a CSV/TSV/JSONL file, or a hub dataset id (needs a network and ``datasets``).
    Columns are inferred when unambiguous; otherwise name them. A file is read through
    :func:`~pruning_core.safe_files.read_user_file`: with ``policy`` its data roots apply
    (``always_allowed``: e.g. the upload folder).
    """
    key = str(source).strip()
    if key.lower() in BUNDLED:
        path = BUNDLED[key.lower()]
        columns, rows = _rows_from_text(_read_text(path), "tsv", path.name)
        dataset = dataset_from_rows(rows, columns, key.lower() if ":" in key else "sst2:dev", "sentence", None, "label")
        dataset = TextDataset(
            name=dataset.name,
            texts=dataset.texts,
            labels=tuple(int(v) for v in dataset.labels),
            text_columns=dataset.text_columns,
            label_column=dataset.label_column,
        )
    else:
        if "\x00" in key:
            raise DataError("The data path contains a NUL byte, which no file name can hold; check the path.")
        path = Path(key).expanduser()
        looks_like_path = path.suffix.lower() in (".csv", ".tsv", ".tab", ".jsonl", ".json", ".ndjson", ".txt")
        if path.exists() or looks_like_path or key.startswith((".", "/", "~")):
            fmt = _format_of(path.name)
            columns, rows = _rows_from_text(_read_text(path, policy, always_allowed), fmt, path.name)
            dataset = dataset_from_rows(rows, columns, path.name, text_column, text_pair_column, label_column)
        else:
            dataset = _load_hub(key, split, text_column, text_pair_column, label_column)
    if max_rows is not None and len(dataset) > max_rows:
        dataset = dataset.subset(range(max_rows), name=f"{dataset.name}[:{max_rows}]")
    return dataset
