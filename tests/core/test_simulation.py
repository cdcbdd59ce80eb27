"""The simulated audience: determinism, realistic rates, consistent outcomes, learnability."""

import random
import statistics

import pytest

from hpe_core import simulation
from hpe_core.decide.features import ActionCatalog, context_features
from hpe_core.decide.policy import Learner, vw_arguments
from hpe_core.tenancy.settings import validate_settings

POPULATION = simulation.Population(size=2000, seed=7)


def test_same_seed_gives_same_users_and_touchpoints():
    """Users, touchpoints and contexts are a pure function of the seed."""
    again = simulation.Population(size=2000, seed=7)
    assert again.users == POPULATION.users
    assert list(again.touchpoints(200)) == list(POPULATION.touchpoints(200))
    assert simulation.Population(size=2000, seed=8).users != POPULATION.users
    assert list(POPULATION.touchpoints(50, seed=1)) != list(POPULATION.touchpoints(50, seed=2))


def test_context_carries_no_user_id_nor_latent_traits():
    """The context has what a campaign tool sends: no user id, no price sensitivity."""
    for touch in POPULATION.touchpoints(300):
        text = repr(touch.context)
        assert touch.user.user_id not in text
        assert "price_sensitivity" not in text and "affinity" not in text
        assert touch.context["channel"] == touch.channel and touch.context["hour"] == touch.hour


def test_segment_is_only_sometimes_in_the_context():
    """About SEGMENT_KNOWN_SHARE of users come with their segment; the rest need proxies."""
    share = statistics.mean("segment" in simulation.context(u, "web", 12) for u in POPULATION.users)
    assert abs(share - simulation.SEGMENT_KNOWN_SHARE) < 0.05


def test_random_choice_has_realistic_marketing_rates():
    """Random offers get a few percent clicks, email above ads."""
    by_channel = {}
    for channel in simulation.CHANNELS:
        by_channel[channel] = statistics.mean(
            simulation.engagement_probability(u, o, channel)
            for u in POPULATION.users[:300]
            for o in simulation.OFFERS
        )
    assert all(0.005 < rate < 0.15 for rate in by_channel.values())
    assert by_channel["email"] > by_channel["ads"]


def test_best_offer_per_segment_is_two_to_four_times_the_average():
    """Segments want different offers, strongly enough that personalization pays."""
    best_offers = set()
    for segment in simulation.SEGMENTS:
        users = [u for u in POPULATION.users if u.segment == segment][:200]
        rates = {
            o.id: statistics.mean(simulation.engagement_probability(u, o, "email") for u in users)
            for o in simulation.OFFERS
        }
        best = max(rates, key=rates.get)
        best_offers.add(best)
        assert 2.0 <= rates[best] / statistics.mean(rates.values()) <= 4.0
    assert len(best_offers) == len(simulation.SEGMENTS)


def test_true_lift_is_at_least_fifty_percent():
    """The best-per-touchpoint policy beats random by well over +50%."""
    lift = simulation.true_lift(samples=3000, seed=3)
    assert lift["lift"] >= 0.5
    assert lift["best"] > lift["random"] > 0


def test_outcomes_are_consistent():
    """Clicks imply opens on email, conversions imply clicks and carry a positive value."""
    rng = random.Random(5)
    seen = set()
    for touch in POPULATION.touchpoints(4000):
        offer = rng.choice(simulation.OFFERS)
        events = simulation.outcomes(touch.user, offer, touch.channel, rng)
        types = [e["type"] for e in events]
        seen.update(types)
        assert len(types) == len(set(types))
        if "click" in types and touch.channel == "email":
            assert types.index("open") < types.index("click")
        if touch.channel != "email":
            assert "open" not in types and "unsubscribe" not in types
        if "conversion" in types:
            assert types.index("click") < types.index("conversion")
            assert events[types.index("conversion")]["value"] > 0
        if "unsubscribe" in types:
            assert "click" not in types
    assert {"open", "click", "conversion"} <= seen


@pytest.mark.parametrize("channel", simulation.CHANNELS)
def test_clicks_happen_at_the_engagement_probability(channel):
    """The click frequency matches engagement_probability within sampling error."""
    user = next(u for u in POPULATION.users if u.segment == "loyal_premium")
    offer = simulation.OFFERS_BY_ID["vip-early-access"]
    p = simulation.engagement_probability(user, offer, channel)
    rng = random.Random(11)
    draws = 20000
    clicks = sum(
        any(e["type"] == "click" for e in simulation.outcomes(user, offer, channel, rng))
        for _ in range(draws)
    )
    assert abs(clicks / draws - p) < 4 * (p * (1 - p) / draws) ** 0.5


def test_settings_actions_are_a_valid_configuration():
    """The offers load as an HPE configuration's actions, 8 to 20 of them."""
    settings = validate_settings({"actions": simulation.settings_actions()})
    assert 8 <= len(settings["actions"]) <= 20
    assert [a["id"] for a in settings["actions"]] == [o.id for o in simulation.OFFERS]


def test_a_learner_beats_random_on_the_simulation():
    """A short online loop with the default exploration lifts engagement well above random."""
    catalog = ActionCatalog(simulation.settings_actions())
    offers = [simulation.OFFERS_BY_ID[i] for i in catalog.ids]
    lines = catalog.lines()
    learner = Learner(vw_arguments({}))
    rng = random.Random(3)
    chosen, uniform = [], []
    for touch in POPULATION.touchpoints(4000, seed=3):
        shared = context_features(touch.context)
        probabilities = learner.predict(shared, lines)
        index = rng.choices(range(len(lines)), probabilities)[0]
        rates = [simulation.engagement_probability(touch.user, o, touch.channel) for o in offers]
        chosen.append(rates[index])
        uniform.append(statistics.mean(rates))
        events = simulation.outcomes(touch.user, offers[index], touch.channel, rng)
        reward = 1.0 if any(e["type"] == "click" for e in events) else 0.0
        learner.learn_batch([(shared, lines, index, reward, probabilities[index])])
    assert statistics.mean(chosen[-1000:]) > 1.3 * statistics.mean(uniform[-1000:])
