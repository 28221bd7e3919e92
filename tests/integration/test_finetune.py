"""A real fine-tune of the packaged MiniLM on a few hundred emotion texts, driven through the CLI as a user would.

One module-scoped training run (about a minute on 2 CPU cores) feeds every test here.
"""

from __future__ import annotations

import json
import random
from collections import Counter

import pytest
from click.testing import CliRunner
from transformers import pipeline

from emostream.cli import cli
from models import EmotionClassifier, ModelRegistry

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def sample_split(source, target, n, seed):
    rows = source.read_text(encoding="utf-8").splitlines()
    target.write_text("\n".join(random.Random(seed).sample(rows, n)) + "\n", encoding="utf-8")


@pytest.fixture(scope="module")
def env(tmp_path_factory, datasets_dir):
    root = tmp_path_factory.mktemp("finetune")
    data = root / "data"
    data.mkdir()
    for split, n in (("train", 1200), ("validation", 300), ("test", 400)):
        sample_split(datasets_dir / "emotion" / f"{split}.jsonl", data / f"{split}.jsonl", n, seed=7)
    return {
        "EMOSTREAM_REGISTRY_DIR": str(root / "registry"),
        "EMOSTREAM_DATA_DIR": str(root),
        "data": str(data),
        "EMOSTREAM_LOG_FORMAT": "json",
    }


def read_test(env, field):
    with open(f"{env['data']}/test.jsonl", encoding="utf-8") as handle:
        return [json.loads(line)[field] for line in handle]


def run(env, *args, input=None):
    variables = {k: v for k, v in env.items() if k.startswith("EMOSTREAM_")}
    result = CliRunner().invoke(cli, list(args), env=variables, input=input, catch_exceptions=False)
    return result


@pytest.fixture(scope="module")
def trained(env):
    result = run(
        env,
        "train",
        "--data",
        env["data"],
        "--recipe",
        "quick",
        "--epochs",
        "3",
        "--learning-rate",
        "2e-4",
        "--batch-size",
        "16",
        "--register",
    )
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_training_learned_well_above_the_majority_class(env, trained):
    gold = read_test(env, "label")
    majority = Counter(gold).most_common(1)[0][1] / len(gold)
    assert trained["version"] == "v0001" and trained["current"] is True
    assert trained["scored_on"] == "test"
    assert trained["accuracy"] > majority + 0.2, (trained, majority)

    evaluated = run(env, "evaluate", "--model", "current", "--data", env["data"])
    assert evaluated.exit_code == 0, evaluated.output
    metrics = json.loads(evaluated.stdout)
    assert metrics["n"] == 400 and set(metrics) >= {"accuracy", "macro_f1", "weighted_f1", "per_class"}
    assert abs(metrics["accuracy"] - trained["accuracy"]) < 0.03  # int8 serving (if approved) stays close to fp32


def test_registered_version_has_card_metrics_and_picture(env, trained):
    folder = ModelRegistry(env["EMOSTREAM_REGISTRY_DIR"]).verify("v0001")
    metrics = json.loads((folder / "metrics.json").read_text())
    assert metrics["test"]["n"] == 400 and metrics["training"]["best_epoch"] >= 1
    assert "macro-F1" in (folder / "README.md").read_text()
    # Scores are calibrated: the temperature fitted on validation is saved with the weights and reported.
    calibration = metrics["training"]["calibration"]
    config = json.loads((folder / "config.json").read_text())
    assert 0.05 < calibration["temperature"] < 20 and config["calibration_temperature"] == pytest.approx(
        calibration["temperature"], abs=1e-4
    )
    assert 0 <= metrics["test"]["ece"] <= 1 and "ece_uncalibrated" in metrics["test"]
    assert "temperature scaling" in (folder / "README.md").read_text()
    assert (folder / "confusion_matrix.png").read_bytes()[:4] == b"\x89PNG"
    assert not list(folder.glob("*.bin"))


def test_checkpoint_loads_in_a_transformers_pipeline(env, trained):
    folder = ModelRegistry(env["EMOSTREAM_REGISTRY_DIR"]).resolve("current")
    texts = read_test(env, "text")[:40]
    hf = pipeline("text-classification", model=str(folder), device="cpu")
    ours = EmotionClassifier.from_pretrained(folder, device="cpu", quantize="off").predict(texts)
    assert [r["label"] for r in hf(texts)] == [p.label for p in ours]


def test_predict_from_arguments_and_stdin(env, trained):
    result = run(env, "predict", "i am so happy today", "this makes me furious")
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [line["text"] for line in lines] == ["i am so happy today", "this makes me furious"]
    assert all(line["label"] in line["scores"] for line in lines)
    piped = run(env, "predict", input="first text\n\nsecond text\n")
    assert [json.loads(line)["text"] for line in piped.stdout.splitlines()] == ["first text", "second text"]


def test_evaluate_restricted_to_some_labels(env, trained):
    result = run(env, "evaluate", "--data", env["data"], "--labels", "joy,sadness")
    metrics = json.loads(result.stdout)
    assert set(metrics["per_class"]) == {"joy", "sadness"}
    assert metrics["n"] + metrics["excluded"] == 400


def test_models_promote_and_rollback_through_the_cli(env, trained):
    registry = ModelRegistry(env["EMOSTREAM_REGISTRY_DIR"])
    registry.register(registry.versions_dir / "v0001")
    assert json.loads(run(env, "models", "promote", "v0002").stdout)["version"] == "v0002"
    assert json.loads(run(env, "models", "current").stdout)["version"] == "v0002"
    assert json.loads(run(env, "models", "rollback").stdout)["version"] == "v0001"
    listed = [json.loads(line) for line in run(env, "models", "list").stdout.splitlines()]
    assert [(v["version"], v["current"]) for v in listed] == [("v0001", True), ("v0002", False)]


def test_clear_errors(env, trained, tmp_path):
    missing = run(env, "evaluate", "--data", str(tmp_path / "nope.jsonl"))
    assert missing.exit_code == 1 and "Error:" in missing.output
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "ok", "label": "joy"}\n{"text": "x", "label": "awe"}\n')
    unknown = run(env, "evaluate", "--data", str(bad))
    assert unknown.exit_code == 1 and "awe" in unknown.output
    assert run(env, "models", "promote", "v0099").exit_code == 1
    empty = {**env, "EMOSTREAM_REGISTRY_DIR": str(tmp_path / "empty")}
    assert "no current model" in run(empty, "predict", "hello").output
