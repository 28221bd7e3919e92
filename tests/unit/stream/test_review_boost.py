"""Review boosts: a drift report boosts its source for a while, then the boost expires."""

from __future__ import annotations

from stream.review_boost import ReviewBoosts


def test_a_drift_report_boosts_its_source_until_the_duration_has_passed():
    boosts = ReviewBoosts(rate=0.3, duration_ms=1_000)
    assert boosts.on_drift({"source": "web", "distance": 0.7}, now_ms=5_000) == "web"
    assert boosts.active(5_500) == {"web": 0.3}
    boosts.on_drift({"source": "web"}, now_ms=5_800)  # drifting again: the boost lasts from the latest report
    assert boosts.active(6_500) == {"web": 0.3}
    assert boosts.active(6_800) == {} and boosts.until == {}


def test_records_that_are_not_reports_and_a_zero_rate_boost_nothing():
    assert ReviewBoosts(rate=0.3, duration_ms=1_000).on_drift([1, 2], now_ms=0) is None
    assert ReviewBoosts(rate=0.3, duration_ms=1_000).on_drift({"source": 7}, now_ms=0) is None
    off = ReviewBoosts(rate=0.0, duration_ms=1_000)
    assert off.on_drift({"source": "web"}, now_ms=0) is None and off.active(1) == {}
