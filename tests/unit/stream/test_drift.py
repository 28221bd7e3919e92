"""Drift of the emotion mix: the distance, the baseline, when a window is compared and what the report says."""

from __future__ import annotations

import math

import pytest

from stream.drift import DriftDetector, js_distance, mean_distribution, shares


def test_js_distance_is_zero_for_the_same_mix_one_for_disjoint_ones_and_symmetric():
    assert js_distance({"joy": 0.5, "fear": 0.5}, {"fear": 0.5, "joy": 0.5}) == 0.0
    assert js_distance({"joy": 1.0}, {"anger": 1.0}) == pytest.approx(1.0)
    p, q = {"joy": 0.7, "fear": 0.3}, {"joy": 0.4, "fear": 0.4, "anger": 0.2}
    assert js_distance(p, q) == pytest.approx(js_distance(q, p))
    # by hand: m = (0.55, 0.35, 0.1); JSD = (KL(p||m) + KL(q||m)) / 2
    kl_p = 0.7 * math.log2(0.7 / 0.55) + 0.3 * math.log2(0.3 / 0.35)
    kl_q = 0.4 * math.log2(0.4 / 0.55) + 0.4 * math.log2(0.4 / 0.35) + 0.2 * math.log2(0.2 / 0.1)
    assert js_distance(p, q) == pytest.approx(math.sqrt((kl_p + kl_q) / 2))


def test_shares_and_the_mean_distribution():
    assert shares({"joy": 3, "fear": 1}) == {"joy": 0.75, "fear": 0.25}
    assert shares({}) == {}
    assert mean_distribution([{"joy": 1.0}, {"fear": 0.5, "joy": 0.5}]) == {"fear": 0.25, "joy": 0.75}


def test_a_window_is_compared_only_once_the_baseline_is_full_and_then_joins_it():
    detector = DriftDetector(baseline_windows=2, threshold=0.2, min_events=5)
    history: list = []
    assert detector.observe(history, "chat", 0, 60, {"joy": 10}) is None
    assert detector.observe(history, "chat", 60, 120, {"joy": 9, "fear": 1}) is None
    report = detector.observe(history, "chat", 120, 180, {"anger": 6, "joy": 2})
    assert report is not None and report.distance > 0.2
    record = report.to_record()
    assert record["baseline"] == {"fear": 0.05, "joy": 0.95} and record["current"] == {"anger": 0.75, "joy": 0.25}
    assert [c["label"] for c in record["top_changes"]] == ["anger", "joy", "fear"]
    assert record["top_changes"][0] == {"label": "anger", "baseline": 0.0, "current": 0.75, "change": 0.75}
    assert history == [{"joy": 9, "fear": 1}, {"anger": 6, "joy": 2}]  # the last two windows


def test_a_steady_mix_and_small_windows_are_not_reported():
    detector = DriftDetector(baseline_windows=2, threshold=0.2, min_events=5)
    history: list = []
    for start in range(0, 300, 60):
        assert detector.observe(history, "chat", start, start + 60, {"joy": 8, "fear": 2}) is None
    assert detector.observe(history, "chat", 300, 360, {"anger": 3}) is None  # too few events to say anything
    assert len(history) == 2 and {"anger": 3} not in history


def test_a_zero_baseline_turns_drift_off():
    detector = DriftDetector(baseline_windows=0, threshold=0.2)
    history: list = []
    assert detector.observe(history, "chat", 0, 60, {"joy": 100}) is None and history == []
