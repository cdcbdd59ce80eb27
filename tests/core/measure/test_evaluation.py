"""Off-policy evaluation: estimators against hand computation and a known-truth simulation,
then hpe_core.measure.evaluation.evaluate on real databases (row selection, policies, the model)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
import random

import pytest
import sqlalchemy as sa
from hypothesis import given, settings
from hypothesis import strategies as st

from hpe_core.decide.features import ActionCatalog, decision_features
from hpe_core.decide.policy import store
from hpe_core.decide.policy.exploration import vw_arguments
from hpe_core.decide.policy.learner import Learner
from hpe_core.errors import InvalidInput
from hpe_core.measure import estimators, evaluation
from hpe_core.measure.estimators import Z95, LoggedDecision, RewardModel
from hpe_core.store.models import Decision
from hpe_core.tenancy import configs, workspaces
from hpe_core.tenancy.workspaces import Principal
from web.extensions import app_runtime

# --- Hand computation ------------------------------------------------------------------

#: Six logged decisions: (channel, eligible, chosen, propensity, reward).
SIX = [
    LoggedDecision("email", ("a", "b"), "a", 0.5, 1.0),
    LoggedDecision("email", ("a", "b"), "b", 0.5, 0.0),
    LoggedDecision("web", ("a", "b", "c"), "a", 0.25, 1.0),
    LoggedDecision("web", ("a", "b", "c"), "c", 0.5, 0.0),
    LoggedDecision("web", ("a", "b", "c"), "b", 0.25, 1.0),
    LoggedDecision("email", ("a", "b"), "a", 0.8, 0.0),
]
ALWAYS_A = [[1.0, 0.0], [1.0, 0.0], [1.0, 0.0, 0.0], [1.0, 0.0, 0.0], [1.0, 0.0, 0.0], [1.0, 0.0]]

# The reward model by hand (k = 5 pseudo-decisions). Global mean m = 3 / 6 = 0.5.
#   rhat(a) = (2 + 5 * 0.5) / (3 + 5) = 4.5 / 8      (a: rewards 1, 1, 0)
#   rhat(b) = (1 + 2.5) / (2 + 5) = 3.5 / 7          (b: rewards 0, 1)
#   rhat(c) = (0 + 2.5) / (1 + 5) = 2.5 / 6          (c: reward 0)
R_A, R_B, R_C = 4.5 / 8, 3.5 / 7, 2.5 / 6
#   rhat(a, email) = (1 + 5 rhat(a)) / (2 + 5)      (a on email: 1, 0)
#   rhat(a, web)   = (1 + 5 rhat(a)) / (1 + 5)      (a on web: 1)
#   rhat(b, email) = (0 + 5 rhat(b)) / 6, rhat(b, web) = (1 + 5 rhat(b)) / 6
#   rhat(c, web)   = (0 + 5 rhat(c)) / 6, rhat(c, email) = rhat(c) (never logged there)
A_EMAIL, A_WEB = (1 + 5 * R_A) / 7, (1 + 5 * R_A) / 6
B_EMAIL, B_WEB = 5 * R_B / 6, (1 + 5 * R_B) / 6
C_WEB = 5 * R_C / 6


def estimate(rows, distributions, reward_model) -> dict:
    """:func:`estimators.estimate` as a dict of the API's fields, to compare by name."""
    return dataclasses.asdict(estimators.estimate(rows, distributions, reward_model))


def _interval(mean: float, terms: list[float]) -> list[float]:
    """mean +- 1.96 * sample sd / sqrt(n), written out."""
    n = len(terms)
    sd = math.sqrt(sum((t - mean) ** 2 for t in terms) / (n - 1))
    return [mean - Z95 * sd / math.sqrt(n), mean + Z95 * sd / math.sqrt(n)]


def test_reward_model_is_shrunk_means_per_action_then_per_channel():
    """rhat(a, c) shrinks toward rhat(a), which shrinks toward the global mean."""
    model = RewardModel(SIX)
    assert model.global_mean == 0.5
    assert model.action_means == pytest.approx({"a": R_A, "b": R_B, "c": R_C})
    assert model.predict("a", "email") == pytest.approx(A_EMAIL)
    assert model.predict("a", "web") == pytest.approx(A_WEB)
    assert model.predict("b", "email") == pytest.approx(B_EMAIL)
    assert model.predict("b", "web") == pytest.approx(B_WEB)
    assert model.predict("c", "web") == pytest.approx(C_WEB)
    assert model.predict("c", "email") == pytest.approx(R_C)  # never on email: rhat(c)
    assert model.predict("z", "web") == 0.5  # never logged: the global mean
    described = dataclasses.asdict(model.describe())
    assert described["name"] == "shrunk_means" and described["prior_weight"] == 5.0
    assert described["actions"]["a"] == {"n": 3, "mean": pytest.approx(R_A)}


def test_a_fixed_policy_matches_hand_computed_ips_snips_dr_ess_and_intervals():
    """'Always a' on six decisions: every number written out by hand."""
    result = estimate(SIX, ALWAYS_A, RewardModel(SIX))
    # w = pi(a_i)/p_i: 1/0.5, 0, 1/0.25, 0, 0, 1/0.8
    w = [2.0, 0.0, 4.0, 0.0, 0.0, 1.25]
    ips_terms = [2.0, 0.0, 4.0, 0.0, 0.0, 0.0]  # w * r
    assert result["n"] == 6
    assert result["ips"] == pytest.approx(6 / 6)
    assert result["ips_ci"] == pytest.approx(_interval(1.0, ips_terms))
    snips = 6 / 7.25  # sum w r / sum w
    assert result["snips"] == pytest.approx(snips)
    z = [2 * (1 - snips), 0.0, 4 * (1 - snips), 0.0, 0.0, 1.25 * (0 - snips)]
    se = math.sqrt(sum(v * v for v in z) / 5 / 6) / (7.25 / 6)
    assert result["snips_ci"] == pytest.approx([snips - Z95 * se, snips + Z95 * se])
    assert result["ess"] == pytest.approx(sum(w) ** 2 / sum(x * x for x in w))
    assert result["ess"] == pytest.approx(7.25**2 / (4 + 16 + 1.5625))
    # DR term: rhat(a, c_i) + w_i (r_i - rhat(a_i, c_i))
    dr_terms = [
        A_EMAIL + 2 * (1 - A_EMAIL),
        A_EMAIL,  # w = 0: the direct term alone
        A_WEB + 4 * (1 - A_WEB),
        A_WEB,
        A_WEB,
        A_EMAIL + 1.25 * (0 - A_EMAIL),
    ]
    dr = sum(dr_terms) / 6
    assert dr == pytest.approx((6 - 0.25 * A_EMAIL - A_WEB) / 6)  # the same, simplified
    assert result["dr"] == pytest.approx(dr)
    assert result["dr_ci"] == pytest.approx(_interval(dr, dr_terms))
    assert [result["ci_low"], result["ci_high"]] == list(result["dr_ci"])
    assert result["dm"] == pytest.approx((3 * A_EMAIL + 3 * A_WEB) / 6)


def test_the_uniform_baseline_matches_hand_computation():
    """Uniform over each eligible set: w = (1/|A|)/p, DR's direct term averages rhat."""
    uniform = [[0.5, 0.5] if len(r.eligible) == 2 else [1 / 3] * 3 for r in SIX]
    result = estimate(SIX, uniform, RewardModel(SIX))
    w = [1.0, 1.0, 4 / 3, 2 / 3, 4 / 3, 0.625]
    rewards = [1.0, 0.0, 1.0, 0.0, 1.0, 0.0]
    assert result["ips"] == pytest.approx((1 + 4 / 3 + 4 / 3) / 6)
    assert result["snips"] == pytest.approx((1 + 4 / 3 + 4 / 3) / sum(w))
    assert result["ess"] == pytest.approx(sum(w) ** 2 / sum(x * x for x in w))
    email = (A_EMAIL + B_EMAIL) / 2
    web = (A_WEB + B_WEB + C_WEB) / 3
    predicted = [A_EMAIL, B_EMAIL, A_WEB, C_WEB, B_WEB, A_EMAIL]
    direct = [email, email, web, web, web, email]
    dr_terms = [d + wi * (r - p) for d, wi, r, p in zip(direct, w, rewards, predicted, strict=True)]
    assert result["dr"] == pytest.approx(sum(dr_terms) / 6)
    assert result["dr_ci"] == pytest.approx(_interval(sum(dr_terms) / 6, dr_terms))


def test_the_logged_policy_is_the_mean_observed_reward():
    """w = 1 and DR's correction cancels: IPS = SNIPS = DR = mean reward, ESS = n."""
    result = estimate(SIX, [None] * 6, RewardModel(SIX))
    rewards = [r.reward for r in SIX]
    assert result["ips"] == result["snips"] == result["dr"] == pytest.approx(0.5)
    assert result["ess"] == pytest.approx(6.0)
    assert result["ips_ci"] == pytest.approx(_interval(0.5, rewards))
    # Delta method with w = 1 is the plain interval too.
    assert result["snips_ci"] == pytest.approx(result["ips_ci"])
    assert result["dr_ci"] == pytest.approx(result["ips_ci"])


def test_degenerate_inputs_give_none_not_nan_or_errors():
    """n = 0: all None; no overlap: estimates None, ESS 0; n = 1: no interval; overflow: None."""
    empty = estimate([], [], RewardModel([]))
    assert empty["n"] == 0
    assert all(empty[k] is None for k in ("ips", "snips", "dr", "dm", "ess", "ci_low", "ci_high"))
    assert empty["ips_ci"] == empty["snips_ci"] == empty["dr_ci"] == (None, None)

    rows = [SIX[0], SIX[2]]  # both chose a; the target never serves a
    none_overlap = estimate(rows, [[0.0, 1.0], [0.0, 1.0, 0.0]], RewardModel(rows))
    assert none_overlap["ess"] == 0.0 and none_overlap["n"] == 2
    assert none_overlap["ips"] is None and none_overlap["snips"] is None
    assert none_overlap["dr"] is None and none_overlap["ci_low"] is None

    one = estimate(SIX[:1], [[1.0, 0.0]], RewardModel(SIX[:1]))
    assert one["ips"] == 2.0 and one["ips_ci"] == (None, None) and one["ci_low"] is None

    tiny = [LoggedDecision("email", ("a", "b"), "a", 5e-324, 1e300)] * 2
    extreme = estimate(tiny, [[1.0, 0.0]] * 2, RewardModel(tiny))
    for key in ("ips", "snips", "dr", "ess", "ci_low"):
        assert extreme[key] is None or math.isfinite(extreme[key])


def test_one_distribution_per_row_is_required():
    """A missing row's distribution, or one of the wrong length, is a programming error."""
    with pytest.raises(ValueError):
        estimate(SIX, ALWAYS_A[:5], RewardModel(SIX))
    with pytest.raises(ValueError):
        estimate(SIX[:1], [[1.0, 0.0, 0.0]], RewardModel(SIX))


@settings(max_examples=60, deadline=None, derandomize=True)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["email", "web"]),
            st.integers(0, 2),
            st.floats(0.05, 1.0),
            st.floats(-5, 5, allow_nan=False),
            st.floats(0.0, 1.0),
        ),
        min_size=2,
        max_size=30,
    )
)
def test_properties_of_any_logged_sample(raw):
    """ESS is in (0, n]; SNIPS lies within the rewards of decisions it weighs; intervals
    contain their estimate; the logging policy's own distribution gives weight 1."""
    rows = [LoggedDecision(c, ("a", "b", "c"), "abc"[i], p, r) for c, i, p, r, _ in raw]
    # A target that puts probability q on the logged action and spreads the rest.
    targets = []
    for (_c, i, _p, _r, q), row in zip(raw, rows, strict=True):
        dist = [(1 - q) / 2] * 3
        dist[i] = q
        targets.append(dist)
        assert row.chosen == i
    result = estimate(rows, targets, RewardModel(rows))
    if result["ess"]:
        assert 0 < result["ess"] <= len(rows) + 1e-9
        weighed = [r.reward for r, t in zip(rows, targets, strict=True) if t[r.chosen] > 0]
        assert min(weighed) - 1e-9 <= result["snips"] <= max(weighed) + 1e-9
        for name in ("ips", "snips", "dr"):
            low, high = result[f"{name}_ci"]
            assert low <= result[name] + 1e-9 and result[name] <= high + 1e-9
    own = [[row.propensity if a == row.action_id else 0.0 for a in row.eligible] for row in rows]
    same = estimate(rows, own, RewardModel(rows))
    assert same["ips"] == pytest.approx(sum(r.reward for r in rows) / len(rows))
    assert same["ess"] == pytest.approx(len(rows))


# --- Simulation with known truth --------------------------------------------------------

ACTIONS3 = ("a", "b", "c")
#: P(reward = 1) per channel and action; the target serves b on email and c on web.
TRUTH = {"email": {"a": 0.1, "b": 0.3, "c": 0.2}, "web": {"a": 0.4, "b": 0.1, "c": 0.6}}
TARGET = {"email": "b", "web": "c"}
TRUE_VALUE = 0.5 * TRUTH["email"]["b"] + 0.5 * TRUTH["web"]["c"]  # 0.45


def _uniform_log(rng: random.Random, n: int) -> list[LoggedDecision]:
    rows = []
    for _ in range(n):
        channel = rng.choice(("email", "web"))
        action = rng.choice(ACTIONS3)
        reward = 1.0 if rng.random() < TRUTH[channel][action] else 0.0
        rows.append(LoggedDecision(channel, ACTIONS3, action, 1 / 3, reward))
    return rows


def test_simulation_intervals_cover_the_true_value_of_a_deterministic_policy():
    """Uniform-random logs, 300 replications: IPS and DR intervals cover the truth ~95% of
    the time, both are unbiased, and DR (good reward model) has narrower intervals."""
    rng = random.Random(20260601)
    replications, n = 300, 300
    covered = {"ips": 0, "dr": 0}
    totals = {"ips": 0.0, "dr": 0.0}
    widths = {"ips": 0.0, "dr": 0.0}
    for _ in range(replications):
        rows = _uniform_log(rng, n)
        target = [[1.0 if a == TARGET[r.channel] else 0.0 for a in ACTIONS3] for r in rows]
        result = estimate(rows, target, RewardModel(rows))
        for name in covered:
            low, high = result[f"{name}_ci"]
            covered[name] += low <= TRUE_VALUE <= high
            totals[name] += result[name]
            widths[name] += high - low
    for name in covered:
        assert 0.91 <= covered[name] / replications <= 0.985, (name, covered)
        # Standard error of the mean over replications is about 0.045 / sqrt(300) ~ 0.003.
        assert totals[name] / replications == pytest.approx(TRUE_VALUE, abs=0.01), name
    assert widths["dr"] < 0.8 * widths["ips"], widths


# --- evaluate() on the database -----------------------------------------------------------

T0 = dt.datetime(2026, 3, 10, 12, 0, tzinfo=dt.UTC)
DB_ACTIONS = [
    {"id": "a", "features": {"tone": "bold"}},
    {"id": "b", "features": {"tone": "calm"}},
    {"id": "c", "features": {"tone": "warm"}},
]


@pytest.fixture
def evaluated(app, session):
    """A configuration whose decision log holds SIX plus rows evaluation must leave out."""
    workspaces.create_workspace(session, "evaluators")
    config = configs.create(
        session,
        Principal("evaluators", "test"),
        app_runtime(app).catalog,
        name="Evaluated",
        settings={"actions": DB_ACTIONS, "channels": ["email", "web"]},
    )
    session.flush()

    def log(n, row, *, at, reward=..., given=None, source="live", eligible=None):
        context = {"segment": f"s{n % 2}"}
        session.add(
            Decision(
                workspace_id="evaluators",
                config_id=config.id,
                user_id=f"u{n}",
                channel=row.channel,
                context=context,
                features=decision_features(row.channel, context),
                eligible=eligible or list(row.eligible),
                probabilities=[
                    row.propensity if a == row.action_id else None for a in row.eligible
                ],
                action_id=row.action_id,
                probability=row.propensity,
                variant="treatment",
                policy="model",
                model_version=0,
                source=source,
                created_at=at,
                window_closes_at=at,
                learned_at=None if reward is ... else at,
                reward=None if reward is ... else reward,
                given_reward=given,
            )
        )

    # SIX over two days: four learned live rows, two imports not yet learned.
    for n, row in enumerate(SIX):
        at = T0 + dt.timedelta(days=n // 3, minutes=n)
        if n in (2, 5):
            log(n, row, at=at, given=row.reward, source="import")
        elif n == 0:  # "gone" was eligible too; it is dropped, leaving (a, b)
            log(n, row, at=at, reward=row.reward, eligible=["a", "gone", "b"])
        else:
            log(n, row, at=at, reward=row.reward)
    # Left out: not learned yet; outside the range; a removed action.
    log(10, SIX[0], at=T0)
    log(11, SIX[0], at=T0 - dt.timedelta(days=1), reward=1.0)
    log(12, LoggedDecision("email", ("a", "gone"), "gone", 0.5, 1.0), at=T0, reward=1.0)
    session.commit()
    return config


def _run(session, config, **kwargs):
    kwargs.setdefault("date_from", T0.date())
    kwargs.setdefault("date_to", T0.date() + dt.timedelta(days=1))
    return _answer(evaluation.evaluate(session, config, **kwargs))


def _answer(result) -> dict:
    """The evaluation as a dict with the API's field names (``from``, ``to``)."""
    answer = dataclasses.asdict(result)
    answer["from"], answer["to"] = answer.pop("date_from"), answer.pop("date_to")
    available = answer["available"]
    if available is not None:
        answer["available"] = {"from": available["date_from"], "to": available["date_to"]}
    return answer


def test_evaluate_reads_learned_and_imported_rows_in_range(session, evaluated):
    """Exactly SIX is evaluated: logged and baseline numbers equal the hand computation."""
    result = _run(session, evaluated, policies=evaluation.POLICIES)
    assert result["config_id"] == evaluated.id
    assert (result["from"], result["to"]) == (T0.date(), T0.date() + dt.timedelta(days=1))
    assert result["n"] == 6 and result["skipped"] == 1  # the removed action's decision
    assert set(result["policies"]) == set(evaluation.POLICIES)
    assert result["model_version"] is None  # nothing learned by a model yet
    logged = result["policies"]["logged"]
    assert logged["ips"] == logged["dr"] == pytest.approx(0.5) and logged["n"] == 6
    uniform = [[0.5, 0.5] if len(r.eligible) == 2 else [1 / 3] * 3 for r in SIX]
    expected = estimate(SIX, uniform, RewardModel(SIX))
    for key in ("ips", "snips", "dr", "ess", "ci_low", "ci_high"):
        assert result["policies"]["baseline"][key] == pytest.approx(expected[key]), key
    assert result["reward_model"]["global_mean"] == pytest.approx(0.5)


def test_an_empty_range_names_the_dates_that_hold_evaluable_decisions(session, evaluated):
    """Nothing in range: `available` spans the evaluable rows (the unlearned one left out)
    and the hint gives from/to; over MAX_DAYS of history, it suggests the newest part."""
    result = _run(session, evaluated, date_from=dt.date(2026, 4, 1), date_to=dt.date(2026, 4, 30))
    assert result["n"] == 0 and result["skipped"] == 0
    assert result["available"] == {"from": dt.date(2026, 3, 9), "to": dt.date(2026, 3, 11)}
    assert "from=2026-03-09&to=2026-03-11 to evaluate them." in result["hint"]
    in_range = _run(session, evaluated)
    assert in_range["n"] == 6 and (in_range["available"], in_range["hint"]) == (None, None)

    oldest = session.scalars(sa.select(Decision).where(Decision.user_id == "u11")).one()
    columns = {c.key: getattr(oldest, c.key) for c in Decision.__table__.columns if c.key != "id"}
    session.add(Decision(**{**columns, "created_at": T0 - dt.timedelta(days=800)}))
    session.commit()
    result = _run(session, evaluated, date_from=dt.date(2026, 4, 1), date_to=dt.date(2026, 4, 30))
    assert result["available"]["from"] == (T0 - dt.timedelta(days=800)).date()
    start = dt.date(2026, 3, 11) - dt.timedelta(days=evaluation.MAX_DAYS - 1)
    assert f"from={start}&to=2026-03-11 to evaluate the most recent 366 days" in result["hint"]


def test_a_range_whose_actions_were_all_removed_says_so(session, evaluated):
    """Evaluable rows in range whose actions are gone: n 0, no `available`, a hint why."""
    evaluated.settings = {**evaluated.settings, "actions": DB_ACTIONS[1:]}  # "a" removed
    session.commit()
    day = (T0 - dt.timedelta(days=1)).date()  # only decision u11, which chose "a"
    result = _run(session, evaluated, date_from=day, date_to=day)
    assert (result["n"], result["skipped"], result["available"]) == (0, 1, None)
    assert "no longer in the settings" in result["hint"], result["hint"]


def test_fixed_baseline_and_limit_and_range(session, evaluated):
    """A fixed-action baseline is a point mass; limit keeps the newest; the range is inclusive."""
    evaluated.settings = {
        **evaluated.settings,
        "holdout": {"percent": 10, "baseline": {"action_id": "a"}},
    }
    session.commit()
    result = _run(session, evaluated, policies=("baseline",))
    expected = estimate(SIX, ALWAYS_A, RewardModel(SIX))
    assert result["policies"]["baseline"]["dr"] == pytest.approx(expected["dr"])
    assert set(result["policies"]) == {"baseline"}

    newest = _run(session, evaluated, policies=("logged",), limit=3)  # rows 3, 4, 5 (day 2)
    assert newest["n"] == 3
    assert newest["policies"]["logged"]["ips"] == pytest.approx((0 + 1 + 0) / 3)
    first_day = _run(session, evaluated, policies=("logged",), date_to=T0.date())
    assert first_day["n"] == 3 and first_day["skipped"] == 1
    assert first_day["policies"]["logged"]["ips"] == pytest.approx((1 + 0 + 1) / 3)


def test_bad_policies_and_limits_are_invalid_input(session, evaluated):
    """Unknown or empty policy names and limits outside 1..MAX_LIMIT raise InvalidInput."""
    with pytest.raises(InvalidInput) as error:
        _run(session, evaluated, policies=("model", "best"))
    assert "policies" in error.value.errors
    for limit in (0, evaluation.MAX_LIMIT + 1):
        with pytest.raises(InvalidInput):
            _run(session, evaluated, limit=limit)
    assert evaluation.parse_policies(["logged, model", "baseline"]) == (
        "model",
        "baseline",
        "logged",
    )
    assert evaluation.parse_policies(None) == evaluation.DEFAULT_POLICIES
    for bad in (["model,nope"], [""], [" , "]):
        with pytest.raises(InvalidInput):
            evaluation.parse_policies(bad)


def _train(session, config, segment_to_action: dict[str, str]) -> int:
    """Save a model version that learned segment -> best action from uniform logs."""
    args = vw_arguments(config.settings["exploration"])
    catalog = ActionCatalog(DB_ACTIONS)
    ids = [a["id"] for a in DB_ACTIONS]
    rng = random.Random(3)
    examples = []
    for _ in range(600):
        segment = rng.choice(sorted(segment_to_action))
        index = rng.randrange(3)
        reward = 1.0 if ids[index] == segment_to_action[segment] else 0.0
        shared = decision_features("email", {"segment": segment})
        examples.append((shared, catalog.lines(), index, reward, 1 / 3))
    with Learner(args) as learner:
        learner.learn_batch(examples)
        model = learner.save()
    version = store.save(session, config.id, args=args, model=model, examples=600, previous=None)
    session.commit()
    return version.version


def test_the_model_policy_is_the_newest_models_distribution(session, evaluated):
    """model = the newest version's pmf per decision; model_greedy its top action."""
    version = _train(session, evaluated, {"s0": "a", "s1": "b"})
    result = _run(session, evaluated, policies=("model", "model_greedy"))
    assert result["model_version"] == version
    newest = store.latest(session, evaluated.id)
    catalog = ActionCatalog(DB_ACTIONS)
    with Learner.load(newest.vw_args, newest.model) as learner:
        pmfs = [
            learner.predict(
                decision_features(r.channel, {"segment": f"s{n % 2}"}), catalog.lines(r.eligible)
            )
            for n, r in reversed(list(enumerate(SIX)))  # evaluate reads newest first
        ]
    rows = list(reversed(SIX))
    expected = estimate(rows, pmfs, RewardModel(rows))
    for key in ("ips", "snips", "dr", "ess"):
        assert result["policies"]["model"][key] == pytest.approx(expected[key]), key
    greedy = [[1.0 if p == max(pmf) else 0.0 for p in pmf] for pmf in pmfs]
    expected_greedy = estimate(rows, greedy, RewardModel(rows))
    assert result["policies"]["model_greedy"]["ips"] == pytest.approx(expected_greedy["ips"])
    # A trained model is not uniform: the greedy policy differs from the exploring one.
    assert any(max(pmf) > 0.6 for pmf in pmfs)


def test_a_model_of_other_exploration_settings_is_not_what_would_serve(session, evaluated):
    """Changed exploration settings: the untrained model is scored and model_version is null."""
    _train(session, evaluated, {"s0": "a", "s1": "b"})
    evaluated.settings = {
        **evaluated.settings,
        "exploration": {"algorithm": "epsilon", "epsilon": 0.2},
    }
    session.commit()
    result = _run(session, evaluated, policies=("model",))
    assert result["model_version"] is None
    # The untrained epsilon-greedy model is uniform: the same as the random baseline.
    baseline = _run(session, evaluated, policies=("baseline",))["policies"]["baseline"]
    assert result["policies"]["model"]["ips"] == pytest.approx(baseline["ips"], rel=1e-6)


def test_rows_without_a_feature_line_are_featurized_from_their_context(session, evaluated):
    """An old row (features NULL) scores like the same row with its line stored."""
    _train(session, evaluated, {"s0": "a", "s1": "b"})
    with_lines = _run(session, evaluated, policies=("model",))["policies"]["model"]
    rows = session.scalars(sa.select(Decision).where(Decision.config_id == evaluated.id)).all()
    for row in rows:
        row.features = None
    session.commit()
    without = _run(session, evaluated, policies=("model",))["policies"]["model"]
    assert without["dr"] == pytest.approx(with_lines["dr"])
    # ... and the context matters: the other segment would score differently.
    for row in rows:
        row.context = {"segment": "s1" if row.context["segment"] == "s0" else "s0"}
    session.commit()
    swapped = _run(session, evaluated, policies=("model",))["policies"]["model"]
    assert swapped["dr"] != pytest.approx(with_lines["dr"])


def test_effective_sample_size_survives_tiny_weights():
    """Weights whose squares underflow to 0.0 still give Kish's effective sample size."""
    from hpe_core.measure.estimators import summarize

    tiny = [1e-200, 2e-200, 1e-200]
    found = summarize(tiny, [0.0, 0.0, 0.0], [0.0, 0.0, 0.0], [0.0, 0.0, 0.0])
    assert found.ess == pytest.approx(16 / 6)
