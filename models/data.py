"""Labelled text data: load jsonl, csv/tsv and the GoEmotions layout (or a Hugging Face dataset id) into one shape.

Every loader returns a :class:`LabelledTexts`: texts, label ids per text, the label names and whether the data is
multi-label. Bad rows (malformed, empty text, unknown label) raise :class:`DataError` naming the file and line, unless
the caller passes ``skip_invalid=True``, in which case they are counted in ``LabelledTexts.skipped``.
"""

from __future__ import annotations

import csv
import json
import random
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from models.errors import DataError

SPLIT_NAMES: dict[str, tuple[str, ...]] = {
    "train": ("train",),
    "validation": ("validation", "dev", "valid", "val"),
    "test": ("test",),
}
SUFFIXES = (".jsonl", ".csv", ".tsv")


@dataclass(frozen=True)
class LabelledTexts:
    """Texts with their gold labels.

    Attributes:
        texts: the texts.
        targets: per text, the ids (indices into ``labels``) of its labels; exactly one for single-label data.
        labels: label names; a label's id is its position.
        multi_label: whether a text may carry several labels.
        source: where the data came from (for messages and model cards).
        skipped: rows dropped by ``skip_invalid``.
    """

    texts: list[str]
    targets: list[tuple[int, ...]]
    labels: tuple[str, ...]
    multi_label: bool = False
    source: str = ""
    skipped: int = 0
    skip_reasons: dict[str, int] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.texts)

    @property
    def label_ids(self) -> list[int]:
        """The single label id of each text (single-label data only)."""
        if self.multi_label:
            raise DataError(f"{self.source}: multi-label data has no single label per text")
        return [t[0] for t in self.targets]

    def subset(self, indices: Sequence[int]) -> LabelledTexts:
        """The rows at ``indices``, in that order."""
        return replace(self, texts=[self.texts[i] for i in indices], targets=[self.targets[i] for i in indices])

    def split_off(self, fraction: float, seed: int) -> tuple[LabelledTexts, LabelledTexts]:
        """A seeded random ``fraction`` of the rows split off (at least one, and at least one left): ``(rest,
        part)``, each in the original order."""
        if not 0 < fraction < 1:
            raise DataError(f"the fraction to split off must be between 0 and 1, got {fraction}")
        order = list(range(len(self)))
        random.Random(seed).shuffle(order)
        cut = max(1, int(len(order) * fraction))
        if cut >= len(order):
            raise DataError(f"{self.source}: too few rows ({len(self)}) to split a part off")
        return self.subset(sorted(order[cut:])), self.subset(sorted(order[:cut]))

    def sample(self, n: int | None, seed: int = 0) -> LabelledTexts:
        """A seeded random sample of at most ``n`` rows (all rows when ``n`` is None or large enough)."""
        if n is None or n >= len(self):
            return self
        return self.subset(sorted(random.Random(seed).sample(range(len(self)), n)))

    def concat(self, other: LabelledTexts) -> LabelledTexts:
        """These rows, then ``other``'s (which must use the same label set)."""
        if other.labels != self.labels or other.multi_label != self.multi_label:
            raise DataError(f"{other.source}: its labels differ from {self.source}'s; relabel it first")
        return replace(
            self,
            texts=self.texts + other.texts,
            targets=self.targets + other.targets,
            source=f"{self.source} + {other.source}",
        )

    def relabel(self, labels: Sequence[str]) -> LabelledTexts:
        """The same rows with ids re-based on ``labels``, which must hold every label used here."""
        missing = sorted({self.labels[i] for t in self.targets for i in t} - set(labels))
        if missing:
            raise DataError(f"{self.source}: labels {missing} are not in the label set {list(labels)}")
        position = {name: i for i, name in enumerate(labels)}
        targets = [tuple(position[self.labels[i]] for i in t) for t in self.targets]
        return replace(self, targets=targets, labels=tuple(labels))


@dataclass(frozen=True)
class Splits:
    """Train, validation and (optional) test data sharing one label set."""

    train: LabelledTexts
    validation: LabelledTexts
    test: LabelledTexts | None = None


@dataclass
class _Row:
    text: Any
    labels: list[Any]
    line: int
    names: dict[int, str] = field(default_factory=dict)  # id -> name hints carried by the row (jsonl `label_text`)


def load_file(
    path: str | Path,
    labels: Sequence[str] | None = None,
    *,
    multi_label: bool | None = None,
    skip_invalid: bool = False,
    text_column: str = "text",
    label_column: str = "label",
) -> LabelledTexts:
    """Load one data file: ``.jsonl``, ``.csv``/``.tsv`` with a header, or a GoEmotions ``.tsv`` beside ``labels.txt``.

    Args:
        path: the file.
        labels: the label set to map onto (e.g. the training split's); unknown labels are errors. Without it, the set
            is built from the file (ids with names from ``label_text``/``labels.txt``, else names in sorted order).
        multi_label: force the kind of data; by default a row with several labels makes it multi-label.
        skip_invalid: drop bad rows and count them instead of raising.
        text_column: name of the text field/column.
        label_column: name of the label field/column (``labels`` is accepted too).
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    goemotions_labels = path.parent / "labels.txt"
    if path.suffix == ".jsonl":
        rows = _read_jsonl(path, text_column, label_column)
        label_names = None
    elif path.suffix in (".csv", ".tsv") and goemotions_labels.is_file() and not _has_header(path, text_column):
        rows = _read_goemotions(path)
        label_names = _read_label_names(goemotions_labels)
    elif path.suffix in (".csv", ".tsv"):
        rows = _read_delimited(path, text_column, label_column)
        label_names = None
    else:
        raise DataError(f"{path}: unsupported format (expected one of {', '.join(SUFFIXES)})")
    return _build(rows, path, labels, label_names, multi_label, skip_invalid)


def load_splits(
    data: str | Path,
    *,
    multi_label: bool | None = None,
    skip_invalid: bool = False,
    validation_fraction: float = 0.1,
    seed: int = 0,
) -> Splits:
    """Load train/validation/test from a folder, one file, or a Hugging Face dataset id.

    A folder holds ``train``, ``validation`` (or ``dev``) and optionally ``test`` files in one of the supported formats.
    A single file is split into train and validation (``validation_fraction``, seeded). Anything that is neither an
    existing path nor looks like a path is tried as a Hugging Face dataset id (needs the ``hub`` extra and network).
    """
    path = Path(data)
    if path.is_dir():
        files = {split: find_split_file(path, split) for split in SPLIT_NAMES}
        if files["train"] is None:
            raise DataError(f"{path}: no train file (train.jsonl, train.csv or train.tsv)")
        train = load_file(files["train"], multi_label=multi_label, skip_invalid=skip_invalid)
        if files["validation"] is None:
            train, validation = train.split_off(validation_fraction, seed)
        else:
            validation = load_file(
                files["validation"], train.labels, multi_label=train.multi_label, skip_invalid=skip_invalid
            )
        test = None
        if files["test"] is not None:
            test = load_file(files["test"], train.labels, multi_label=train.multi_label, skip_invalid=skip_invalid)
        return Splits(train, validation, test)
    if path.is_file():
        whole = load_file(path, multi_label=multi_label, skip_invalid=skip_invalid)
        train, validation = whole.split_off(validation_fraction, seed)
        return Splits(train, validation)
    if looks_like_hub_id(str(data)):
        return load_hub_dataset(str(data), multi_label=multi_label, skip_invalid=skip_invalid)
    raise DataError(f"{data}: no such file or folder")


def load_eval_data(
    data: str | Path, labels: Sequence[str] | None = None, *, split: str = "test", skip_invalid: bool = False
) -> LabelledTexts:
    """The data to score a model on: a file, or a folder's ``split`` file (falling back to validation)."""
    path = Path(data)
    if path.is_dir():
        file = find_split_file(path, split) or find_split_file(path, "validation")
        if file is None:
            raise DataError(f"{path}: no {split} or validation file")
        path = file
    elif not path.is_file() and looks_like_hub_id(str(data)):
        splits = load_hub_dataset(str(data), skip_invalid=skip_invalid)
        chosen = splits.test or splits.validation
        return chosen.relabel(labels) if labels is not None else chosen
    return load_file(path, labels, skip_invalid=skip_invalid)


def find_split_file(folder: Path, split: str) -> Path | None:
    """The file for ``split`` in ``folder`` (``dev.tsv`` counts as validation), or None."""
    for stem in SPLIT_NAMES[split]:
        for suffix in SUFFIXES:
            candidate = folder / f"{stem}{suffix}"
            if candidate.is_file():
                return candidate
    return None


def looks_like_hub_id(value: str) -> bool:
    """Whether ``value`` reads as ``name`` or ``owner/name`` rather than a local path."""
    return bool(value) and value.count("/") <= 1 and not value.startswith((".", "/", "~")) and Path(value).suffix == ""


def load_hub_dataset(dataset_id: str, *, multi_label: bool | None = None, skip_invalid: bool = False) -> Splits:
    """Load a Hugging Face dataset with ``text`` and ``label``/``labels`` columns (needs the ``hub`` extra)."""
    try:
        import datasets
    except ImportError:
        raise DataError(
            f"{dataset_id}: not a local path; loading it as a Hugging Face dataset needs `pip install emostream[hub]`"
        ) from None
    try:
        loaded = datasets.load_dataset(dataset_id)
    except Exception as exc:
        raise DataError(f"{dataset_id}: could not load it as a Hugging Face dataset: {exc}") from exc
    out: dict[str, LabelledTexts] = {}
    train_labels: Sequence[str] | None = None
    for split in SPLIT_NAMES:
        name = next((n for n in SPLIT_NAMES[split] if n in loaded), None)
        if name is None:
            continue
        part = loaded[name]
        label_key = "labels" if "labels" in part.column_names else "label"
        feature = part.features.get(label_key)
        names = getattr(feature, "names", None) or getattr(getattr(feature, "feature", None), "names", None)
        hints = dict(enumerate(names)) if names else {}
        rows = (_Row(r.get("text"), _as_list(r.get(label_key)), i + 1, hints) for i, r in enumerate(part))
        out[split] = _build(rows, Path(f"{dataset_id}:{name}"), train_labels, names, multi_label, skip_invalid)
        train_labels = train_labels or out[split].labels
    if "train" not in out:
        raise DataError(f"{dataset_id}: no train split")
    if "validation" not in out:
        out["train"], out["validation"] = out["train"].split_off(0.1, 0)
    return Splits(out["train"], out["validation"], out.get("test"))


# --- readers: each yields raw rows, line numbers 1-based --------------------------------------------------------------


def _read_jsonl(path: Path, text_column: str, label_column: str) -> Iterator[_Row]:
    with path.open("rb") as handle:
        for line_no, raw in enumerate(handle, start=1):
            if not raw.strip():
                continue
            try:
                record = json.loads(raw)
            except (json.JSONDecodeError, UnicodeDecodeError) as exc:
                yield _Row(_Invalid(f"not valid JSON ({exc.msg if hasattr(exc, 'msg') else exc})"), [], line_no)
                continue
            if not isinstance(record, dict):
                yield _Row(_Invalid("not a JSON object"), [], line_no)
                continue
            label = record.get(label_column, record.get("labels"))
            hints = {}
            if isinstance(label, int) and isinstance(record.get("label_text"), str):
                hints = {label: record["label_text"]}
            yield _Row(record.get(text_column), _as_list(label), line_no, hints)


def _read_delimited(path: Path, text_column: str, label_column: str) -> Iterator[_Row]:
    delimiter = "\t" if path.suffix == ".tsv" else ","
    with path.open(newline="", encoding="utf-8", errors="strict") as handle:
        reader = csv.DictReader(handle, delimiter=delimiter)
        columns = reader.fieldnames or []
        label_key = label_column if label_column in columns else "labels"
        if text_column not in columns or label_key not in columns:
            raise DataError(f"{path}:1: header needs a {text_column!r} and a {label_column!r} column, got {columns}")
        try:
            for row in reader:
                cell = row.get(label_key)
                labels = [] if cell is None else [part.strip() for part in cell.split(",") if part.strip()]
                yield _Row(row.get(text_column), labels, reader.line_num)
        except (csv.Error, UnicodeDecodeError) as exc:
            raise DataError(f"{path}:{reader.line_num}: {exc}") from exc


def _read_goemotions(path: Path) -> Iterator[_Row]:
    with path.open(newline="", encoding="utf-8") as handle:
        for line_no, line in enumerate(handle, start=1):
            parts = line.rstrip("\n").split("\t")
            if len(parts) < 2:
                yield _Row(_Invalid("expected text<TAB>label ids"), [], line_no)
                continue
            ids: list[Any] = []
            for part in parts[1].split(","):
                part = part.strip()
                ids.append(int(part) if part.isdigit() else part)
            yield _Row(parts[0], ids, line_no)


def _read_label_names(path: Path) -> list[str]:
    names = [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    if len(set(names)) != len(names):
        raise DataError(f"{path}: duplicate label names")
    return names


def _has_header(path: Path, text_column: str) -> bool:
    with path.open(encoding="utf-8", errors="replace") as handle:
        first = handle.readline()
    return text_column in first.rstrip("\n").split("\t" if path.suffix == ".tsv" else ",")


# --- building a LabelledTexts out of raw rows -------------------------------------------------------------------------


@dataclass(frozen=True)
class _Invalid:
    reason: str


def _as_list(label: Any) -> list[Any]:
    if label is None:
        return []
    if isinstance(label, list | tuple):
        return list(label)
    return [label]


def _build(
    rows: Iterable[_Row],
    path: Path,
    labels: Sequence[str] | None,
    label_names: Sequence[str] | None,
    multi_label: bool | None,
    skip_invalid: bool,
) -> LabelledTexts:
    rows = list(rows)
    id_names: dict[int, str] = dict(enumerate(label_names)) if label_names else {}
    for row in rows:
        id_names.update(row.names)
    if labels is None:
        labels = _infer_label_set(rows, id_names)
    position = {name: i for i, name in enumerate(labels)}

    texts: list[str] = []
    targets: list[tuple[int, ...]] = []
    reasons: dict[str, int] = {}
    for row in rows:
        try:
            text, target = _validate(row, position, id_names)
            if multi_label is False and len(target) > 1:
                raise DataError(f"{len(target)} labels on a single-label row")
        except DataError as exc:
            if not skip_invalid:
                raise DataError(f"{path}:{row.line}: {exc}") from None
            reason = str(exc).split(":")[0]
            reasons[reason] = reasons.get(reason, 0) + 1
            continue
        texts.append(text)
        targets.append(target)
    if not texts:
        raise DataError(f"{path}: no usable rows")
    is_multi = multi_label if multi_label is not None else any(len(t) > 1 for t in targets)
    return LabelledTexts(texts, targets, tuple(labels), is_multi, str(path), sum(reasons.values()), reasons)


def _infer_label_set(rows: list[_Row], id_names: dict[int, str]) -> tuple[str, ...]:
    used_ids = {label for row in rows for label in row.labels if isinstance(label, int) and not isinstance(label, bool)}
    used_names = {label for row in rows for label in row.labels if isinstance(label, str)}
    if id_names:
        # Ids ordered by id; names that were not given ids follow in sorted order.
        by_id = [id_names[i] for i in sorted(id_names)]
        return tuple(by_id + sorted(used_names - set(by_id) - {str(i) for i in id_names}))
    if used_ids and not used_names:
        return tuple(str(i) for i in range(max(used_ids) + 1))
    return tuple(sorted(used_names | {str(i) for i in used_ids}))


def _validate(row: _Row, position: dict[str, int], id_names: dict[int, str]) -> tuple[str, tuple[int, ...]]:
    if isinstance(row.text, _Invalid):
        raise DataError(row.text.reason)
    if not isinstance(row.text, str):
        raise DataError("missing text" if row.text is None else f"text is not a string ({type(row.text).__name__})")
    text = row.text.strip()
    if not text:
        raise DataError("empty text")
    if not row.labels:
        raise DataError("missing label")
    ids: list[int] = []
    for label in row.labels:
        if isinstance(label, bool) or not isinstance(label, int | str):
            raise DataError(f"label {label!r} is neither a name nor an id")
        name = id_names.get(label, str(label)) if isinstance(label, int) else label
        if isinstance(label, str) and label.isdigit() and name not in position:
            name = id_names.get(int(label), label)
        if name not in position:
            raise DataError(f"unknown label {label!r}")
        if position[name] not in ids:
            ids.append(position[name])
    return text, tuple(ids)
