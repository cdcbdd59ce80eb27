"""The drift detector (Page–Hinkley on the treatment's reward) on synthetic streams with a
known change point."""

from __future__ import annotations

import json
import random

import pytest

from hpe_core.learn.drift import PageHinkley


def _bernoulli(rng: random.Random, rates: list[tuple[int, float]]) -> list[float]:
    """0/1 rewards: ``count`` draws at ``rate``, for each ``(count, rate)`` in turn."""
    return [float(rng.random() < rate) for count, rate in rates for _ in range(count)]


@pytest.mark.parametrize("seed", range(6))
def test_a_drop_is_found_soon_after_its_change_point(seed):
    """A click rate that falls from 7% to 3% at decision 8,000 alarms within 1,500
    decisions, and the estimated change point is within a few hundred of the true one."""
    rng = random.Random(seed)
    stream = _bernoulli(rng, [(8000, 0.07), (4000, 0.03)])
    # (A stable stretch may rarely alarm by chance too: test_a_stable_stream_never_alarms
    # bounds how rarely; here only the alarms after the change matter.)
    alarms = [(i, a) for i, a in PageHinkley().update_all(stream) if i >= 8000]
    assert len(alarms) == 1
    index, alarm = alarms[0]
    assert 8000 < index < 9500
    # change_at and detected_at count from the detector's last reset.
    assert abs(index - (alarm.detected_at - alarm.change_at) - 8000) < 400
    assert alarm.reference_mean == pytest.approx(0.07, abs=0.015)
    assert alarm.recent_mean == pytest.approx(0.03, abs=0.015)


@pytest.mark.parametrize("seed", range(6))
def test_a_stable_stream_never_alarms(seed):
    """30,000 decisions at a constant 6% rate: no alarm (what a wrong alarm costs is a
    retrain, so they must be rare)."""
    stream = _bernoulli(random.Random(100 + seed), [(30000, 0.06)])
    assert PageHinkley().update_all(stream) == []


def test_a_rise_is_not_a_drift():
    """A model that gets better (3% -> 8%) is not a change to react to."""
    stream = _bernoulli(random.Random(3), [(3000, 0.03), (10000, 0.08)])
    assert PageHinkley().update_all(stream) == []


def test_a_small_dip_within_the_tolerance_is_ignored():
    """A drop smaller than δ standard deviations per decision (6% -> 5.5%) is tolerated."""
    stream = _bernoulli(random.Random(4), [(10000, 0.06), (20000, 0.055)])
    assert PageHinkley().update_all(stream) == []


def test_no_alarm_before_min_decisions():
    """However steep the drop, nothing before the reference has seen min_decisions."""
    stream = [1.0] * 300 + [0.0] * 400
    assert PageHinkley(min_decisions=1000).update_all(stream) == []
    assert PageHinkley(min_decisions=500).update_all(stream) != []


def test_the_alarm_names_the_key_of_the_change_point():
    """Learning keys each reward with its decision's time: the alarm says where to retrain
    from (the first decision after the cumulative sum's minimum)."""
    rng = random.Random(5)
    detector = PageHinkley()
    stream = _bernoulli(rng, [(6000, 0.08), (3000, 0.02)])
    alarm = None
    for index, value in enumerate(stream):
        alarm = detector.update(value, key=f"d{index}") or alarm
        if alarm:
            break
    assert alarm is not None
    assert alarm.change_key == f"d{alarm.change_at - 1}"
    assert abs(alarm.change_at - 6000) < 300


def test_state_round_trips_through_json_and_continues_identically():
    """The state is a JSON document: a detector restored mid-stream (another worker, the
    next learn run) alarms exactly where an uninterrupted one does."""
    stream = _bernoulli(random.Random(6), [(7000, 0.07), (3000, 0.03)])
    whole = PageHinkley().update_all(stream)
    first = PageHinkley()
    first.update_all(stream[:7500])
    restored = PageHinkley.from_state(json.loads(json.dumps(first.state())))
    rest = [(index + 7500, alarm) for index, alarm in restored.update_all(stream[7500:])]
    assert rest == whole


def test_settings_override_the_stored_ones():
    """A settings change (threshold, delta) applies to a stored detector at once."""
    detector = PageHinkley.from_state(PageHinkley().state(), threshold=20.0, delta=0.1)
    assert (detector.threshold, detector.delta) == (20.0, 0.1)


def test_after_an_alarm_it_starts_afresh():
    """An alarm resets the detector: a second drop later is found on its own reference."""
    rng = random.Random(8)
    stream = _bernoulli(rng, [(6000, 0.09), (6000, 0.04), (6000, 0.01)])
    alarms = PageHinkley().update_all(stream)
    assert [6000 < i < 7500 for i, _ in alarms][:1] == [True]
    assert len(alarms) == 2 and 12000 < alarms[1][0] < 14000
