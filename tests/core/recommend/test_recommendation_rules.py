"""The recommendation rules, each at its threshold (pure: hand-built summaries and
evaluations, no services), a property test over random numbers, and the settings the
rules rely on (channel exclusions, segment key)."""

from __future__ import annotations

import dataclasses
import json

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from hpe_core.decide.eligibility import excluded
from hpe_core.errors import InvalidInput
from hpe_core.measure.metrics import summarize
from hpe_core.measure.stats import lift, rate
from hpe_core.recommend.model_rules import BAG_SIZE_MAX, EPSILON_MAX
from hpe_core.recommend.proposals import Proposal
from hpe_core.recommend.rules import AUTO_APPLY_KINDS, propose
from hpe_core.recommend.targeting_rules import RETIRE_ALPHA
from hpe_core.results import (
    Comparison,
    Evaluation,
    Lift,
    PerVariant,
    PolicyEstimate,
    Power,
    SampleRatio,
    Slice,
)
from hpe_core.tenancy.merge_patch import apply_merge_patch
from hpe_core.tenancy.settings import parse_settings, validate_settings
from hpe_core.tenancy.settings_types import ChannelExclusion

#: A summary of no days: the hand-built summaries below replace the blocks they need.
EMPTY = summarize([])


def _settings(**blocks):
    raw = {"actions": [{"id": a} for a in ("a", "b", "c", "d")]} | blocks
    return parse_settings(raw)


def _summary(**blocks):
    return dataclasses.replace(EMPTY, **blocks)


def _compared(t_decisions=0, t_engagements=0, h_decisions=0, h_engagements=0) -> dict:
    return {
        "decisions": PerVariant(t_decisions, h_decisions),
        "engagements": PerVariant(t_engagements, h_engagements),
        "engagement_rate": PerVariant(
            rate(t_engagements, t_decisions), rate(h_engagements, h_decisions)
        ),
        "lift": lift(t_engagements, t_decisions, h_engagements, h_decisions),
    }


def _slice(*counts) -> Slice:
    """A channel's or action's slice with these counts (no revenue or cost)."""
    no_money = dict.fromkeys(
        (
            "incremental_revenue",
            "incremental_revenue_ci_low",
            "incremental_revenue_ci_high",
            "roi",
            "roi_ci_low",
            "roi_ci_high",
        )
    )
    return Slice(**_compared(*counts), revenue=0.0, cost=0.0, treatment_cost=0.0, **no_money)


def _segment(*counts) -> Comparison:
    return Comparison(**_compared(*counts))


def _estimate(n, **numbers) -> PolicyEstimate:
    fields = ("ess", "ips", "snips", "dr", "dm", "ci_low", "ci_high")
    return PolicyEstimate(
        n=n,
        **{name: numbers.get(name) for name in fields},
        ips_ci=(None, None),
        snips_ci=(None, None),
        dr_ci=(numbers.get("ci_low"), numbers.get("ci_high")),
    )


def _evaluated(n, policies, model_version=None) -> Evaluation:
    return Evaluation(
        config_id=None,
        date_from=None,
        date_to=None,
        model_version=model_version,
        n=n,
        skipped=0,
        available=None,
        hint=None,
        reward_model=None,
        policies=policies,
    )


def _kinds(proposals) -> list[str]:
    return [p.kind for p in proposals]


def _only(proposals, kind) -> list[Proposal]:
    return [p for p in proposals if p.kind == kind]


def test_no_numbers_no_proposals():
    """An empty summary and a failed evaluation propose nothing (and raise nothing)."""
    assert propose(_settings(), EMPTY, None) == []
    assert propose(_settings(), None, None) == []


# --- retire_action ------------------------------------------------------------------------


def _actions_summary(bad_decisions: int, bad_engagements: int):
    """Action a against b, c, d at 20% engagement (1000 decisions each)."""
    return _summary(
        actions={
            "a": _slice(bad_decisions, bad_engagements),
            "b": _slice(1000, 200),
            "c": _slice(1000, 200),
            "d": _slice(1000, 200),
        }
    )


def test_retire_action_fires_for_a_significantly_worse_action():
    """5% vs 20% over 400 decisions: retire it; the patch drops it from the actions."""
    settings = _settings()
    [proposal] = propose(settings, _actions_summary(400, 20), None)
    assert proposal.kind == "retire_action" and proposal.subject == "a"
    assert proposal.patch == {
        "actions": [a for a in settings.document["actions"] if a["id"] != "a"]
    }
    assert proposal.auto_apply is True
    assert proposal.evidence["decisions"] == 400 and proposal.evidence["engagements"] == 20
    assert proposal.evidence["rest_decisions"] == 3000
    assert proposal.evidence["p_value"] < RETIRE_ALPHA / 4
    assert "“a”" in proposal.title


def test_retire_action_needs_200_treatment_decisions():
    """The same 0% rate is judged at 200 decisions and not at 199."""
    assert _kinds(propose(_settings(), _actions_summary(200, 0), None)) == ["retire_action"]
    assert propose(_settings(), _actions_summary(199, 0), None) == []


def test_retire_action_threshold_is_bonferroni_corrected():
    """An action whose p is under 0.01 but over 0.01/4 (four actions tested) is kept."""
    rest_e, rest_d = 600, 3000

    def p_of(engagements):
        return lift(engagements, 1000, rest_e, rest_d).p_value

    between = next(e for e in range(200, 0, -1) if p_of(e) < RETIRE_ALPHA)
    assert p_of(between) > RETIRE_ALPHA / 4, "pick counts with p between 0.0025 and 0.01"
    assert propose(_settings(), _actions_summary(1000, between), None) == []
    below = next(e for e in range(between, 0, -1) if p_of(e) < RETIRE_ALPHA / 4)
    assert _kinds(propose(_settings(), _actions_summary(1000, below), None)) == ["retire_action"]


def test_retire_action_ignores_better_actions():
    """A significantly *better* action is not retired (the others, now below the rest, may be)."""
    subjects = [p.subject for p in propose(_settings(), _actions_summary(1000, 400), None)]
    assert "a" not in subjects
    assert len(subjects) == 2  # b, c, d are below the rest, but two actions must remain


def test_retire_never_leaves_fewer_than_two_actions():
    """With two actions nothing is retired; with three and two bad ones, only the worst."""
    two = parse_settings({"actions": [{"id": "a"}, {"id": "b"}]})
    summary = _summary(actions={"a": _slice(1000, 10), "b": _slice(1000, 300)})
    assert propose(two, summary, None) == []
    three = parse_settings({"actions": [{"id": "a"}, {"id": "b"}, {"id": "c"}]})
    summary = _summary(
        actions={"a": _slice(1000, 10), "b": _slice(1000, 50), "c": _slice(4000, 1200)}
    )
    [proposal] = propose(three, summary, None)
    assert proposal.subject == "a"


def test_at_most_five_retirements_at_once():
    """Eight bad actions among ten: the five clearest are proposed."""
    ids = [f"x{n}" for n in range(8)] + ["good1", "good2"]
    settings = parse_settings({"actions": [{"id": i} for i in ids]})
    actions = {f"x{n}": _slice(1000, 10 + n) for n in range(8)}
    actions |= {"good1": _slice(4000, 1200), "good2": _slice(4000, 1200)}
    summary = _summary(actions=actions)
    subjects = [p.subject for p in propose(settings, summary, None)]
    assert subjects == ["x0", "x1", "x2", "x3", "x4"]


def test_retire_never_touches_the_fixed_baseline_or_a_removed_action():
    """The holdout's fixed baseline action and actions no longer configured are skipped."""
    fixed = _settings(holdout={"baseline": {"action_id": "a"}})
    assert propose(fixed, _actions_summary(400, 20), None) == []
    actions = dict(_actions_summary(400, 20).actions)
    actions["gone"] = actions.pop("a")
    assert propose(_settings(), _summary(actions=actions), None) == []


# --- change_exploration -------------------------------------------------------------------


def _evaluation(n=500, ess=49.0, model_dr=0.2, ci_low=0.15, ci_high=0.25, baseline_dr=0.2):
    return _evaluated(
        n,
        {
            "model": _estimate(n, ess=ess, dr=model_dr, ci_low=ci_low, ci_high=ci_high),
            "baseline": _estimate(n, ess=n / 2, dr=baseline_dr),
        },
        model_version=3,
    )


@pytest.mark.parametrize(
    ("exploration", "patch"),
    [
        ({"algorithm": "epsilon", "epsilon": 0.05}, {"epsilon": 0.1}),
        ({"algorithm": "epsilon", "epsilon": 0.15}, {"epsilon": EPSILON_MAX}),
        ({"algorithm": "epsilon", "epsilon": 0.0}, {"epsilon": 0.05}),
        ({"algorithm": "squarecb", "gamma_scale": 10}, {"gamma_scale": 5.0}),
        ({"algorithm": "squarecb", "gamma_scale": 1.5}, {"gamma_scale": 1.0}),
        ({"algorithm": "bag", "bag_size": 5}, {"bag_size": 7}),
        ({"algorithm": "bag", "bag_size": 9}, {"bag_size": BAG_SIZE_MAX}),
        ({"algorithm": "cover", "cover_size": 4}, {"cover_size": 6}),
    ],
)
def test_low_effective_sample_size_widens_exploration(exploration, patch):
    """ess/n below 0.1 with n ≥ 500: one step wider for each algorithm, capped."""
    [proposal] = propose(_settings(exploration=exploration), EMPTY, _evaluation())
    assert proposal.kind == "change_exploration"
    assert proposal.patch == {"exploration": patch}
    assert proposal.auto_apply is True
    assert proposal.evidence["ess_ratio"] == pytest.approx(0.098)


@pytest.mark.parametrize(
    ("n", "ess", "fires"), [(500, 49.9, True), (500, 50.0, False), (499, 10.0, False)]
)
def test_exploration_rule_threshold(n, ess, fires):
    """It fires below an ess/n of 0.1 and from 500 evaluated decisions only."""
    proposals = propose(_settings(), EMPTY, _evaluation(n=n, ess=ess))
    assert bool(_only(proposals, "change_exploration")) is fires


@pytest.mark.parametrize(
    "exploration",
    [
        {"algorithm": "epsilon", "epsilon": EPSILON_MAX},
        {"algorithm": "squarecb", "gamma_scale": 1.0},
        {"algorithm": "bag", "bag_size": BAG_SIZE_MAX},
    ],
)
def test_exploration_already_widest_proposes_nothing(exploration):
    assert propose(_settings(exploration=exploration), EMPTY, _evaluation()) == []


def test_exploration_is_left_alone_in_manual_mode():
    """In manual mode the model serves nobody: its exploration changes nothing."""
    assert propose(_settings(automation="manual"), EMPTY, _evaluation()) == []


def _winning(ci_low=0.05, p_value=0.001):
    return _summary(lift=Lift(estimate=0.2, ci_low=ci_low, ci_high=0.4, p_value=p_value))


def test_a_winning_model_narrows_widened_exploration_back_to_the_default():
    """Treatment significantly ahead and ess/n ≥ 0.3: one step back, never past the default."""
    widened = _settings(exploration={"algorithm": "epsilon", "epsilon": 0.2})
    [proposal] = propose(widened, _winning(), _evaluation(ess=150))
    assert proposal.patch == {"exploration": {"epsilon": 0.1}}
    squarecb = _settings(exploration={"gamma_scale": 2.5})
    [proposal] = propose(squarecb, _winning(), _evaluation(ess=150))
    assert proposal.patch == {"exploration": {"gamma_scale": 5.0}}
    assert propose(_settings(), _winning(), _evaluation(ess=150)) == []  # at the default


def test_narrowing_needs_a_healthy_sample_and_a_significant_win():
    widened = _settings(exploration={"algorithm": "epsilon", "epsilon": 0.2})
    assert propose(widened, _winning(), _evaluation(ess=149)) == []  # ratio 0.298
    assert propose(widened, _winning(ci_low=-0.01), _evaluation(ess=150)) == []
    assert propose(widened, _winning(p_value=0.011), _evaluation(ess=150)) == []


# --- holdout_underpowered -----------------------------------------------------------------


def _power_summary(days_more, required=10_000, per_day=2000, holdout=1000, h_engaged=50):
    return _summary(
        decisions=PerVariant(9000, holdout),
        engagements=PerVariant(500, h_engaged),
        power=Power(
            target_lift=0.5,
            baseline_rate=0.05,
            alpha=0.05,
            power=0.8,
            decisions_per_day=per_day,
            holdout_decisions_per_day=None,
            required_holdout_decisions=required,
            holdout_decisions=holdout,
            days_more=days_more,
            detectable_lift=0.9,
        ),
    )


def test_holdout_underpowered_fires_past_28_days():
    """29 more days: raise the holdout to collect the missing 9000 in 14 days (33%)."""
    [proposal] = propose(_settings(), _power_summary(29), None)
    assert proposal.kind == "holdout_underpowered"
    # 9000 missing / (2000 a day × 14 days) = 32.1% → 33
    assert proposal.patch == {"holdout": {"percent": 33.0}}
    assert proposal.auto_apply is False
    assert proposal.evidence["days_more"] == 29
    assert propose(_settings(), _power_summary(28), None) == []


def test_holdout_percent_is_capped_at_50():
    [proposal] = propose(_settings(), _power_summary(400, per_day=100), None)
    assert proposal.patch == {"holdout": {"percent": 50.0}}
    [at_max] = propose(_settings(holdout={"percent": 50}), _power_summary(400), None)
    assert at_max.patch is None and at_max.auto_apply is False


def test_holdout_without_power_estimate_after_a_week_without_engagement():
    """No estimate (no holdout engagement yet): from day 7, double the holdout."""
    summary = _power_summary(None, required=None, h_engaged=0)
    [proposal] = propose(_settings(), summary, None, days_observed=7)
    assert proposal.patch == {"holdout": {"percent": 20.0}}
    assert propose(_settings(), summary, None, days_observed=6) == []
    engaged = _power_summary(None, required=None, h_engaged=1)
    assert propose(_settings(), engaged, None, days_observed=30) == []


# --- srm_alarm ----------------------------------------------------------------------------


def test_srm_alarm_is_critical_and_has_nothing_to_apply():
    srm = SampleRatio(
        expected_holdout_share=0.1,
        observed_holdout_share=0.07,
        chi_square=40.0,
        p_value=2.5e-10,
        alarm=True,
    )
    [proposal] = propose(_settings(), _summary(srm=srm), None)
    assert (proposal.kind, proposal.severity, proposal.patch) == ("srm_alarm", "critical", None)
    assert proposal.auto_apply is False
    assert proposal.evidence["observed_holdout_share"] == 0.07
    assert "10.0%" in proposal.detail and "7.0%" in proposal.detail
    assert propose(_settings(), _summary(srm=dataclasses.replace(srm, alarm=False)), None) == []


# --- channel_segment_underperforms --------------------------------------------------------


def _segments(email=(200, 10), web=(200, 60), segment="bargain"):
    return _summary(
        segments={
            segment: {"email": _segment(*email), "web": _segment(*web)},
            "(none)": {"email": _segment(5000, 10), "web": _segment(5000, 2000)},
        }
    )


def test_underperforming_channel_for_a_segment_is_excluded():
    """5% on email vs 30% on web for "bargain": exclude email for it (never "(none)")."""
    existing = {"channel": "ads", "key": "segment", "in": ["vip"]}
    settings = _settings(guardrails={"channel_exclusions": [existing]})
    [proposal] = propose(settings, _segments(), None)
    assert proposal.kind == "channel_segment_underperforms"
    assert proposal.subject == "email:bargain"
    rule = {"channel": "email", "key": "segment", "in": ["bargain"]}
    assert proposal.patch == {"guardrails": {"channel_exclusions": [existing, rule]}}
    # A person decides: the engine never cuts a channel's reach by itself.
    assert proposal.auto_apply is False
    assert proposal.evidence["best_channel"] == "web"
    # The patch is valid settings.
    validate_settings(settings.document | {"guardrails": proposal.patch["guardrails"]})


def test_segment_rule_needs_200_decisions_on_each_channel():
    assert propose(_settings(), _segments(email=(199, 0)), None) == []
    assert propose(_settings(), _segments(web=(199, 150)), None) == []


def test_segment_rule_uses_the_configured_segment_key_and_skips_excluded_pairs():
    settings = _settings(goals={"segment_key": "tier"})
    [proposal] = propose(settings, _segments(), None)
    assert proposal.patch["guardrails"]["channel_exclusions"][-1]["key"] == "tier"
    done = {"channel": "email", "key": "segment", "in": ["bargain"]}
    assert propose(_settings(guardrails={"channel_exclusions": [done]}), _segments(), None) == []


def test_segment_rule_is_significance_tested():
    """Close rates (20% vs 24% on 200 each) are no evidence."""
    assert propose(_settings(), _segments(email=(200, 40), web=(200, 48)), None) == []


# --- model_worse_than_baseline ------------------------------------------------------------


def test_model_worse_than_baseline_switches_to_manual():
    evaluation = _evaluation(ess=400, model_dr=0.1, ci_low=0.05, ci_high=0.149, baseline_dr=0.15)
    [proposal] = propose(_settings(), EMPTY, evaluation)
    assert proposal.kind == "model_worse_than_baseline"
    assert proposal.patch == {"automation": "manual"} and proposal.auto_apply is True
    assert proposal.evidence["model_ci_high"] == 0.149 and proposal.evidence["baseline_dr"] == 0.15


@pytest.mark.parametrize(
    ("n", "ci_high", "automation"),
    [(499, 0.1, "assisted"), (500, 0.15, "assisted"), (500, 0.1, "manual")],
)
def test_model_worse_threshold(n, ci_high, automation):
    """Needs 500 decisions, an interval wholly below the baseline, and a serving model."""
    evaluation = _evaluation(n=n, ess=n, ci_high=ci_high, baseline_dr=0.15)
    assert propose(_settings(automation=automation), EMPTY, evaluation) == []


# --- property: every patch is valid settings ----------------------------------------------

_count = st.integers(0, 3000)


@st.composite
def _numbers(draw):
    """Random settings, a summary and an evaluation in the shapes the services return."""
    ids = draw(st.lists(st.sampled_from("abcdefg"), min_size=2, max_size=6, unique=True))
    algorithm = draw(st.sampled_from(["epsilon", "squarecb", "bag", "cover"]))
    settings = parse_settings(
        {
            "actions": [{"id": i} for i in ids],
            "automation": draw(st.sampled_from(["manual", "assisted", "autonomous"])),
            "exploration": {
                "algorithm": algorithm,
                "epsilon": draw(st.floats(0, 1)),
                "gamma_scale": draw(st.floats(0.001, 100)),
                "bag_size": draw(st.integers(2, 50)),
                "cover_size": draw(st.integers(1, 50)),
            },
            "holdout": {
                "percent": draw(st.floats(0.5, 50)),
                "baseline": draw(
                    st.just("random") | st.sampled_from(ids).map(lambda a: {"action_id": a})
                ),
            },
        }
    )

    def counts():
        t = draw(_count)
        h = draw(_count)
        return t, draw(st.integers(0, t)), h, draw(st.integers(0, h))

    channels = st.sampled_from(["email", "web", "ads"])
    overall = _compared(*counts())
    summary = _summary(
        decisions=overall["decisions"],
        engagements=overall["engagements"],
        engagement_rate=overall["engagement_rate"],
        lift=Lift(
            estimate=draw(st.floats(-1, 5)),
            ci_low=draw(st.none() | st.floats(-1, 5)),
            ci_high=draw(st.none() | st.floats(-1, 5)),
            p_value=draw(st.none() | st.floats(0, 1)),
        ),
        srm=SampleRatio(
            expected_holdout_share=draw(st.floats(0.005, 0.5)),
            observed_holdout_share=draw(st.none() | st.floats(0, 1)),
            chi_square=None,
            p_value=draw(st.floats(0, 1)),
            alarm=draw(st.booleans()),
        ),
        power=Power(
            target_lift=0.5,
            baseline_rate=None,
            alpha=0.05,
            power=0.8,
            decisions_per_day=draw(st.none() | st.floats(0, 10**6)),
            holdout_decisions_per_day=None,
            required_holdout_decisions=draw(st.none() | st.integers(0, 10**7)),
            holdout_decisions=overall["decisions"].holdout,
            days_more=draw(st.none() | st.integers(0, 1000)),
            detectable_lift=None,
        ),
        actions={
            a: _slice(*counts()) for a in draw(st.lists(st.sampled_from("abcdefgz"), unique=True))
        },
        segments={
            seg: {c: _segment(*counts()) for c in draw(st.lists(channels, unique=True))}
            for seg in draw(
                st.lists(st.sampled_from(["s1", "s2", "(none)", "(other)"]), unique=True)
            )
        },
    )
    n = draw(st.integers(0, 5000))
    evaluation = draw(
        st.none()
        | st.just(
            _evaluated(
                n,
                {
                    "model": _estimate(
                        n,
                        ess=draw(st.floats(0, max(n, 1))),
                        dr=0.1,
                        ci_low=0.0,
                        ci_high=draw(st.floats(0, 1)),
                    ),
                    "baseline": _estimate(n, dr=draw(st.floats(0, 1))),
                },
            )
        )
    )
    return settings, summary, evaluation, draw(st.integers(0, 60))


@hypothesis_settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(numbers=_numbers())
def test_every_proposed_patch_is_valid_settings(numbers):
    """Whatever the numbers, proposals are unique per kind and subject, their patches
    give valid settings, retiring keeps two actions and the fixed baseline, and only the
    kinds the engine may apply are marked auto_apply."""
    settings, summary, evaluation, days = numbers
    proposals = propose(settings, summary, evaluation, days_observed=days)
    keys = [(p.kind, p.subject) for p in proposals]
    assert len(keys) == len(set(keys))
    retired = set()
    for proposal in proposals:
        assert proposal.severity in ("info", "warning", "critical")
        assert proposal.title and proposal.detail
        json.dumps(proposal.evidence, allow_nan=False)
        assert proposal.auto_apply == (
            proposal.kind in AUTO_APPLY_KINDS and proposal.patch is not None
        )
        if proposal.patch is None:
            continue
        patched = validate_settings(apply_merge_patch(settings.document, proposal.patch))
        assert patched != settings.document, proposal
        if proposal.kind == "retire_action":
            retired.add(proposal.subject)
            assert len(patched["actions"]) >= 2
    assert len(settings.actions) - len(retired) >= 2
    baseline = settings.holdout.baseline
    if isinstance(baseline, dict):
        assert baseline["action_id"] not in retired


# --- new settings: channel exclusions and the segment key ---------------------------------


def _exclusion_errors(rules: list, channels=("email",)) -> dict:
    with pytest.raises(InvalidInput) as info:
        validate_settings(
            {
                "actions": [{"id": "a"}],
                "channels": list(channels),
                "guardrails": {"channel_exclusions": rules},
            }
        )
    return info.value.errors["settings"]["guardrails"]["channel_exclusions"]


def test_channel_exclusion_fields_are_validated():
    errors = _exclusion_errors(
        [
            {"channel": "email", "key": "segment", "in": ["x", 3, True]},
            {"channel": "email", "key": "segment", "in": [None]},
            {"channel": "email", "key": "segment", "in": []},
            {"channel": "email", "in": ["x"], "extra": 1},
            {"channel": "email", "key": "segment", "in": [{"nested": 1}]},
        ]
    )
    assert set(errors) == {"1", "2", "3", "4"}, errors
    assert set(errors["3"]) == {"key", "extra"}


def test_channel_exclusions_must_name_a_config_channel():
    errors = _exclusion_errors(
        [
            {"channel": "email", "key": "segment", "in": ["x"]},
            {"channel": "web", "key": "segment", "in": ["x"]},
        ]
    )
    assert set(errors) == {"1"} and "web" in errors["1"]["channel"][0]
    rule = {"channel": "web", "key": "segment", "in": ["x"]}
    result = validate_settings(
        {"actions": [{"id": "a"}], "guardrails": {"channel_exclusions": [rule]}}
    )
    assert result["guardrails"]["channel_exclusions"] == [rule]


def test_segment_key_defaults_and_validates():
    assert validate_settings({"actions": [{"id": "a"}]})["goals"]["segment_key"] == "segment"
    with pytest.raises(InvalidInput):
        validate_settings({"actions": [{"id": "a"}], "goals": {"segment_key": ""}})


def test_excluded_matches_channel_key_and_value_also_by_text():
    rules = [ChannelExclusion(channel="email", key="segment", values=("bargain", "3", "true"))]
    assert excluded(rules, "email", {"segment": "bargain"})
    assert excluded(rules, "email", {"segment": 3})  # reports name segments as text
    assert excluded(rules, "email", {"segment": True})
    assert not excluded(rules, "web", {"segment": "bargain"})
    assert not excluded(rules, "email", {"segment": "vip"})
    assert not excluded(rules, "email", {})
    assert not excluded(rules, "email", {"segment": ["bargain"]})
