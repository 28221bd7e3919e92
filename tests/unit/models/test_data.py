"""Data loading: every supported layout, label mapping, and clear errors for bad rows."""

from __future__ import annotations

import json

import pytest

from models.data import DataError, LabelledTexts, load_eval_data, load_file, load_splits


def write_jsonl(path, rows):
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows), encoding="utf-8")
    return path


def test_jsonl_with_ids_takes_names_from_label_text(tmp_path):
    path = write_jsonl(
        tmp_path / "d.jsonl",
        [
            {"text": "so sad", "label": 0, "label_text": "sadness"},
            {"text": "so happy", "label": 1, "label_text": "joy"},
            {"text": "scared", "label": 4, "label_text": "fear"},
        ],
    )
    data = load_file(path)
    assert data.labels[:2] == ("sadness", "joy") and data.labels[-1] == "fear"
    assert data.label_ids == [0, 1, data.labels.index("fear")]
    assert not data.multi_label


def test_jsonl_with_names_and_lists_is_multi_label(tmp_path):
    path = write_jsonl(
        tmp_path / "d.jsonl",
        [
            {"text": "a", "label": "joy"},
            {"text": "b", "labels": ["anger", "joy"]},
        ],
    )
    data = load_file(path)
    assert data.labels == ("anger", "joy")
    assert data.multi_label
    assert data.targets == [(1,), (0, 1)]


@pytest.mark.parametrize(
    ("row", "reason"),
    [
        ("{not json", "not valid JSON"),
        ("[1, 2]", "not a JSON object"),
        ({"label": "joy"}, "missing text"),
        ({"text": 3, "label": "joy"}, "text is not a string"),
        ({"text": "   ", "label": "joy"}, "empty text"),
        ({"text": "x"}, "missing label"),
    ],
)
def test_bad_jsonl_row_names_file_and_line(tmp_path, row, reason):
    path = write_jsonl(tmp_path / "bad.jsonl", [{"text": "fine", "label": "joy"}, row])
    with pytest.raises(DataError, match=rf"bad\.jsonl:2: {reason}"):
        load_file(path)


def test_skip_invalid_counts_instead_of_raising(tmp_path):
    path = write_jsonl(
        tmp_path / "d.jsonl",
        [
            {"text": "fine", "label": "joy"},
            "{oops",
            {"text": "", "label": "joy"},
            {"text": "ok", "label": "anger"},
        ],
    )
    data = load_file(path, skip_invalid=True)
    assert data.texts == ["fine", "ok"]
    assert data.skipped == 2
    assert sum(data.skip_reasons.values()) == 2


def test_unknown_label_against_a_given_label_set(tmp_path):
    path = write_jsonl(tmp_path / "v.jsonl", [{"text": "a", "label": "joy"}, {"text": "b", "label": "awe"}])
    with pytest.raises(DataError, match=r"v\.jsonl:2: unknown label 'awe'"):
        load_file(path, labels=["joy", "anger"])


def test_csv_and_tsv_with_header(tmp_path):
    (tmp_path / "d.csv").write_text('text,label\n"hello, world",joy\nugh,anger\n', encoding="utf-8")
    (tmp_path / "d.tsv").write_text("id\ttext\tlabels\n1\tyay\tjoy,surprise\n", encoding="utf-8")
    csv_data = load_file(tmp_path / "d.csv")
    assert csv_data.texts == ["hello, world", "ugh"] and csv_data.labels == ("anger", "joy")
    tsv_data = load_file(tmp_path / "d.tsv")
    assert tsv_data.multi_label and tsv_data.targets == [(0, 1)]


def test_csv_without_required_columns(tmp_path):
    (tmp_path / "d.csv").write_text("body,label\nx,joy\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"d\.csv:1: header needs a 'text'"):
        load_file(tmp_path / "d.csv")


def test_goemotions_layout(tmp_path):
    (tmp_path / "labels.txt").write_text("admiration\namusement\nneutral\n", encoding="utf-8")
    (tmp_path / "train.tsv").write_text("nice one\t0,1\tid1\nmeh\t2\tid2\n", encoding="utf-8")
    (tmp_path / "dev.tsv").write_text("lol\t1\tid3\n", encoding="utf-8")
    (tmp_path / "test.tsv").write_text("bad\t7\tid4\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"test\.tsv:1: unknown label 7"):
        load_splits(tmp_path)
    (tmp_path / "test.tsv").write_text("ok\t2\tid4\n", encoding="utf-8")
    splits = load_splits(tmp_path)
    assert splits.train.labels == ("admiration", "amusement", "neutral")
    assert splits.train.multi_label and splits.validation.multi_label
    assert splits.train.targets == [(0, 1), (2,)]
    assert splits.validation.targets == [(1,)] and splits.test.targets == [(2,)]


def test_single_file_is_split_for_validation(tmp_path):
    rows = [{"text": f"t{i}", "label": "joy" if i % 2 else "anger"} for i in range(50)]
    splits = load_splits(write_jsonl(tmp_path / "all.jsonl", rows), validation_fraction=0.2)
    assert len(splits.train) == 40 and len(splits.validation) == 10
    assert not set(splits.train.texts) & set(splits.validation.texts)


def test_missing_path_is_a_clear_error(tmp_path):
    with pytest.raises(DataError, match="no such file or folder"):
        load_splits(tmp_path / "nope.jsonl")
    with pytest.raises(DataError, match="no train file"):
        load_splits(tmp_path)


def test_relabel_and_sample(tmp_path):
    data = load_file(write_jsonl(tmp_path / "d.jsonl", [{"text": str(i), "label": "ab"[i % 2]} for i in range(10)]))
    moved = data.relabel(["z", "b", "a"])
    assert [moved.labels[t[0]] for t in moved.targets] == [data.labels[t[0]] for t in data.targets]
    assert data.sample(3, seed=1).texts == data.sample(3, seed=1).texts
    assert len(data.sample(3)) == 3 and len(data.sample(None)) == 10


def test_shared_emotion_splits(datasets_dir):
    splits = load_splits(datasets_dir / "emotion")
    assert (len(splits.train), len(splits.validation), len(splits.test)) == (16000, 2000, 2000)
    assert splits.train.labels == ("sadness", "joy", "love", "anger", "fear", "surprise")
    assert load_eval_data(datasets_dir / "emotion").texts == splits.test.texts


def test_shared_goemotions_is_multi_label(datasets_dir):
    splits = load_splits(datasets_dir / "goemotions")
    assert len(splits.train.labels) == 28 and splits.train.multi_label
    assert len(splits.validation) == 5426


def test_split_off_is_seeded_keeps_order_and_leaves_rows_on_both_sides():
    data = LabelledTexts([f"t{i}" for i in range(10)], [(i % 2,) for i in range(10)], ("a", "b"), False, "ten")
    rest, part = data.split_off(0.3, seed=1)
    assert len(part) == 3 and len(rest) == 7
    assert sorted(rest.texts + part.texts, key=lambda t: int(t[1:])) == data.texts
    assert rest.texts == sorted(rest.texts, key=lambda t: int(t[1:]))  # original order kept
    assert data.split_off(0.3, seed=1) == (rest, part)
    with pytest.raises(DataError):
        data.subset([0]).split_off(0.5, seed=1)  # nothing would be left
    with pytest.raises(DataError):
        data.split_off(1.0, seed=1)


def test_concat_keeps_order_and_refuses_a_different_label_set():
    first = LabelledTexts(["a", "b"], [(0,), (1,)], ("joy", "fear"), source="first")
    second = LabelledTexts(["c"], [(1,)], ("joy", "fear"), source="second")
    joined = first.concat(second)
    assert joined.texts == ["a", "b", "c"] and joined.targets == [(0,), (1,), (1,)]
    assert joined.labels == ("joy", "fear") and joined.source == "first + second"
    with pytest.raises(DataError, match="relabel it first"):
        first.concat(LabelledTexts(["c"], [(0,)], ("fear", "joy"), source="other"))
