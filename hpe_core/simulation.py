"""A simulated marketing audience with a known ground truth, for demos, tests and benchmarks.

Users belong to one of four segments that want different offers: bargain hunters click
deep discounts, loyal premium customers click exclusives and new arrivals, new visitors
click welcome offers, lapsed customers click win-back offers. Within a segment, a latent
price sensitivity, the device and the age band shift the odds further.

What a campaign tool would send as the decision context is realistic rather than
convenient: the CRM segment is present for only some users (:data:`SEGMENT_KNOWN_SHARE`);
the others must be recognised from proxies (tenure, recency, loyalty tier, coupon use).
The latent price sensitivity is never sent.

Everything is seeded: the same seed gives the same users, touchpoints and outcomes.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator
from dataclasses import dataclass

SEGMENTS = ("bargain_hunter", "loyal_premium", "new_visitor", "lapsed")
CHANNELS = ("email", "web", "ads")
AGE_BANDS = ("18-24", "25-34", "35-44", "45-54", "55+")
#: Share of users whose segment the CRM knows and puts in the context.
SEGMENT_KNOWN_SHARE = 0.75

_SEGMENT_SHARE = (0.30, 0.20, 0.30, 0.20)
_CHANNEL_SHARE = (0.50, 0.35, 0.15)
_LOCALES = (
    ("en-US", "America/New_York"),
    ("en-US", "America/Los_Angeles"),
    ("en-GB", "Europe/London"),
    ("de-DE", "Europe/Berlin"),
    ("fr-FR", "Europe/Paris"),
)
# Click rate of an average offer for an average user, per channel (industry-typical:
# email CTR a few percent, display ads around one percent).
_CHANNEL_BASE = {"email": 0.030, "web": 0.022, "ads": 0.012}
_SEGMENT_LEVEL = {"bargain_hunter": 1.0, "loyal_premium": 1.3, "new_visitor": 0.9, "lapsed": 0.6}
_SEGMENT_CHANNEL = {
    "bargain_hunter": {"email": 1.1, "web": 0.9, "ads": 1.0},
    "loyal_premium": {"email": 1.2, "web": 1.1, "ads": 0.6},
    "new_visitor": {"email": 0.7, "web": 1.3, "ads": 1.1},
    "lapsed": {"email": 1.0, "web": 0.6, "ads": 0.9},
}
_PRICE_SENSITIVITY = {
    "bargain_hunter": 0.8,
    "loyal_premium": 0.2,
    "new_visitor": 0.5,
    "lapsed": 0.6,
}
_CONVERSION_GIVEN_CLICK = {
    "bargain_hunter": 0.15,
    "loyal_premium": 0.30,
    "new_visitor": 0.12,
    "lapsed": 0.10,
}
_ORDER_VALUE = {"bargain_hunter": 45.0, "loyal_premium": 120.0, "new_visitor": 60.0, "lapsed": 70.0}
_CREATIVE_DEVICE = {
    ("playful", "mobile"): 1.15,
    ("urgency", "mobile"): 1.15,
    ("editorial", "mobile"): 0.85,
    ("editorial", "desktop"): 1.15,
}
_CREATIVE_AGE = {
    ("playful", "18-24"): 1.2,
    ("playful", "25-34"): 1.1,
    ("playful", "55+"): 0.7,
    ("minimal", "55+"): 1.15,
    ("urgency", "55+"): 0.85,
}


@dataclass(frozen=True)
class Offer:
    """One action of the simulated campaign."""

    id: str
    category: str
    discount_pct: int
    price_band: str
    creative: str
    #: Click-rate multiplier per segment, in :data:`SEGMENTS` order; 1.0 is average.
    affinity: tuple[float, float, float, float]

    def features(self) -> dict:
        """Return the action features a marketer would configure for this offer."""
        return {
            "category": self.category,
            "discount_pct": self.discount_pct,
            "price_band": self.price_band,
            "creative": self.creative,
        }


# The click-rate multiplier columns are the segments in SEGMENTS order; each segment's
# favourite is ~2.5x its average offer, before price sensitivity widens the gap further.
# fmt: off
OFFERS = (
    #     id                   category      disc  band    creative     bargain loyal new lapsed
    Offer("pct20-sitewide",    "sitewide",     20, "mid",  "urgency",   (1.6, 0.6, 1.2, 1.3)),
    Offer("pct40-clearance",   "clearance",    40, "low",  "urgency",   (2.6, 0.3, 0.9, 1.4)),
    Offer("bogo-basics",       "basics",       50, "low",  "playful",   (2.0, 0.4, 0.8, 1.0)),
    Offer("free-shipping",     "sitewide",      0, "mid",  "minimal",   (1.4, 0.9, 1.8, 1.0)),
    Offer("welcome10",         "welcome",      10, "mid",  "friendly",  (0.7, 0.2, 2.8, 0.5)),
    Offer("new-arrivals",      "new_arrivals",  0, "high", "editorial", (0.4, 2.2, 0.9, 0.6)),
    Offer("vip-early-access",  "exclusive",     0, "high", "editorial", (0.2, 2.8, 0.3, 0.4)),
    Offer("points-2x",         "loyalty",       0, "mid",  "minimal",   (0.8, 2.0, 0.3, 0.8)),
    Offer("winback25",         "winback",      25, "mid",  "friendly",  (1.2, 0.4, 0.3, 2.8)),
    Offer("we-miss-you",       "winback",       0, "mid",  "editorial", (0.3, 0.5, 0.2, 1.9)),
    Offer("premium-bundle",    "bundles",      15, "high", "lifestyle", (0.3, 1.7, 0.6, 0.5)),
    Offer("flash-electronics", "electronics",  30, "mid",  "urgency",   (1.5, 0.8, 1.1, 0.9)),
    Offer("app-download",      "app",           0, "low",  "playful",   (0.6, 0.7, 1.3, 0.4)),
    Offer("style-guide",       "content",       0, "low",  "editorial", (0.4, 1.2, 1.0, 0.7)),
)
# fmt: on
_HEADLINES = {
    "pct20-sitewide": "20% off everything",
    "pct40-clearance": "Clearance: 40% off",
    "bogo-basics": "Buy one, get one free",
    "free-shipping": "Free shipping this week",
    "welcome10": "Welcome! 10% off your first order",
    "new-arrivals": "Just landed",
    "vip-early-access": "Early access for you",
    "points-2x": "Double points this weekend",
    "winback25": "We saved you 25%",
    "we-miss-you": "See what's new since your visit",
    "premium-bundle": "The complete look, 15% off",
    "flash-electronics": "Flash sale: 30% off tech",
    "app-download": "Get the app",
    "style-guide": "Your seasonal style guide",
}

OFFERS_BY_ID = {offer.id: offer for offer in OFFERS}


def headline(offer_id: str) -> str:
    """The headline of an offer's content (a generic one for offers of scenarios)."""
    return _HEADLINES.get(offer_id, offer_id.replace("-", " ").capitalize())


@dataclass(frozen=True)
class User:
    """One simulated person: what the CRM knows, plus latent traits it does not."""

    user_id: str
    segment: str
    segment_known: bool
    age_band: str
    device: str
    locale: str
    timezone: str
    tenure_days: int
    recent_purchases: int
    days_since_last_visit: int
    loyalty_tier: str
    used_coupon_last_order: bool
    #: Latent, in [0, 1]: how strongly discounts (and high prices) sway this person.
    price_sensitivity: float
    #: Latent click-rate multiplier per channel, in :data:`CHANNELS` order.
    channel_affinity: tuple[float, float, float]


@dataclass(frozen=True)
class Touchpoint:
    """One moment a campaign tool asks for a decision."""

    user: User
    channel: str
    hour: int
    context: dict


def settings_actions() -> list[dict]:
    """Return the ``actions`` list of an HPE configuration for the simulated offers."""
    return [
        {"id": o.id, "features": o.features(), "content": {"headline": _HEADLINES[o.id]}}
        for o in OFFERS
    ]


def make_users(count: int, seed: int = 0) -> list[User]:
    """Draw ``count`` users; the same seed always gives the same users.

    :param count: how many users
    :param seed: the random seed
    """
    rng = random.Random(f"hpe-users-{seed}")
    return [_make_user(rng, index) for index in range(count)]


def context(user: User, channel: str, hour: int) -> dict:
    """Return the decision context a campaign tool would send for this user (no user id).

    :param user: the person
    :param channel: the touchpoint's channel
    :param hour: the local hour, 0-23
    """
    ctx = {
        "channel": channel,
        "device": user.device,
        "hour": hour,
        "locale": user.locale,
        "tz": user.timezone,
        "tenure_days": user.tenure_days,
        "recent_purchases": user.recent_purchases,
        "days_since_last_visit": user.days_since_last_visit,
        "profile": {
            "age_band": user.age_band,
            "loyalty_tier": user.loyalty_tier,
            "used_coupon_last_order": user.used_coupon_last_order,
        },
    }
    if user.segment_known:
        ctx["segment"] = user.segment
    return ctx


class Population:
    """A fixed set of users and a seeded stream of touchpoints over them.

    :param size: how many users
    :param seed: the random seed for users and touchpoints
    """

    def __init__(self, size: int = 5000, seed: int = 0):
        self.users = tuple(make_users(size, seed))
        self.seed = seed

    def touchpoints(self, count: int, seed: int | None = None) -> Iterator[Touchpoint]:
        """Yield ``count`` touchpoints: a random user, channel and local hour each.

        :param count: how many
        :param seed: the stream's seed (defaults to the population's)
        """
        rng = random.Random(f"hpe-touchpoints-{self.seed if seed is None else seed}")
        hours = range(24)
        # Most marketing touches land in the day and the evening.
        hour_weights = [0.2] * 7 + [1.0] * 11 + [1.6] * 4 + [0.6] * 2
        for _ in range(count):
            user = rng.choice(self.users)
            channel = rng.choices(CHANNELS, _CHANNEL_SHARE)[0]
            hour = rng.choices(hours, hour_weights)[0]
            yield Touchpoint(user, channel, hour, context(user, channel, hour))


def engagement_probability(user: User, offer: Offer, channel: str) -> float:
    """Return the true probability that this user clicks this offer on this channel.

    :param user: the person
    :param offer: the offer shown
    :param channel: ``email``, ``web`` or ``ads``
    :returns: a probability, between 0.1% and 35%
    """
    segment = SEGMENTS.index(user.segment)
    p = (
        _CHANNEL_BASE[channel]
        * user.channel_affinity[CHANNELS.index(channel)]
        * _SEGMENT_LEVEL[user.segment]
        * offer.affinity[segment]
    )
    # Discounts pull price-sensitive people and put off the others; high prices the reverse.
    sensitivity = user.price_sensitivity - 0.5
    p *= math.exp(1.2 * sensitivity * (offer.discount_pct / 25 - 0.6))
    if offer.price_band == "high":
        p *= math.exp(-1.0 * sensitivity)
    p *= _CREATIVE_DEVICE.get((offer.creative, user.device), 1.0)
    p *= _CREATIVE_AGE.get((offer.creative, user.age_band), 1.0)
    return min(0.35, max(0.001, p))


def outcomes(user: User, offer: Offer, channel: str, rng: random.Random) -> list[dict]:
    """Draw what happens after the offer is delivered.

    Clicks happen with exactly :func:`engagement_probability`. On email a click implies an
    open (opens are more likely for relevant subject lines); a conversion implies a click
    and carries the order value; irrelevant emails cause the odd unsubscribe.

    :param rng: the randomness to draw with (seed it for reproducible outcomes)
    :returns: events in the order they happen, e.g. ``[{"type": "open"}, {"type":
        "click"}, {"type": "conversion", "value": 42.0}]``
    """
    p_click = engagement_probability(user, offer, channel)
    events: list[dict] = []
    if channel == "email":
        p_open = min(0.9, 0.12 + 2.5 * p_click)
        if rng.random() >= p_open:
            return events
        events.append({"type": "open"})
        clicked = rng.random() < p_click / p_open
    else:
        clicked = rng.random() < p_click
    if clicked:
        events.append({"type": "click"})
        p_convert = _CONVERSION_GIVEN_CLICK[user.segment] * (
            1 + user.price_sensitivity * offer.discount_pct / 50
        )
        if rng.random() < p_convert:
            value = rng.lognormvariate(math.log(_ORDER_VALUE[user.segment]), 0.5)
            value *= 1 - offer.discount_pct / 100
            events.append({"type": "conversion", "value": round(value, 2)})
    elif channel == "email":
        affinity = offer.affinity[SEGMENTS.index(user.segment)]
        if rng.random() < min(0.01, 0.002 / affinity):
            events.append({"type": "unsubscribe"})
    return events


def true_lift(samples: int = 20000, seed: int = 0) -> dict:
    """Expected click rate of random choice vs the best offer for every touchpoint.

    The best policy here knows latent traits the context does not carry, so its lift is
    an upper bound on what a learner can reach.

    :param samples: touchpoints to average over
    :param seed: the seed of the population and the touchpoints
    :returns: ``{"random": rate, "best": rate, "lift": best / random - 1}``
    """
    population = Population(seed=seed)
    random_total = best_total = 0.0
    for touch in population.touchpoints(samples):
        rates = [engagement_probability(touch.user, o, touch.channel) for o in OFFERS]
        random_total += sum(rates) / len(rates)
        best_total += max(rates)
    return {
        "random": random_total / samples,
        "best": best_total / samples,
        "lift": best_total / random_total - 1,
    }


def _make_user(rng: random.Random, index: int) -> User:
    segment = rng.choices(SEGMENTS, _SEGMENT_SHARE)[0]
    locale, timezone = rng.choice(_LOCALES)
    ages = {"loyal_premium": (1, 2, 3, 3, 2), "new_visitor": (3, 3, 2, 1, 1)}.get(
        segment, (2, 3, 3, 2, 2)
    )
    devices = (0.45, 0.45, 0.10) if segment == "loyal_premium" else (0.65, 0.25, 0.10)
    if segment == "new_visitor":
        tenure, purchases, recency = rng.randrange(0, 30), rng.randrange(0, 2), rng.randrange(8)
        tier, coupon = "none", rng.random() < 0.2
    elif segment == "bargain_hunter":
        tenure, purchases, recency = rng.randrange(60, 1500), rng.randrange(1, 7), rng.randrange(31)
        tier, coupon = ("silver" if rng.random() < 0.3 else "none"), rng.random() < 0.8
    elif segment == "loyal_premium":
        tenure, purchases, recency = (
            rng.randrange(365, 3000),
            rng.randrange(2, 11),
            rng.randrange(15),
        )
        tier, coupon = ("gold" if rng.random() < 0.6 else "silver"), rng.random() < 0.1
    else:
        tenure, purchases, recency = rng.randrange(200, 2500), 0, rng.randrange(90, 401)
        tier, coupon = ("silver" if rng.random() < 0.4 else "none"), rng.random() < 0.4
    channel_pref = _SEGMENT_CHANNEL[segment]
    return User(
        user_id=f"u{index:06d}",
        segment=segment,
        segment_known=rng.random() < SEGMENT_KNOWN_SHARE,
        age_band=rng.choices(AGE_BANDS, ages)[0],
        device=rng.choices(("mobile", "desktop", "tablet"), devices)[0],
        locale=locale,
        timezone=timezone,
        tenure_days=tenure,
        recent_purchases=purchases,
        days_since_last_visit=recency,
        loyalty_tier=tier,
        used_coupon_last_order=coupon,
        price_sensitivity=min(1.0, max(0.0, rng.gauss(_PRICE_SENSITIVITY[segment], 0.15))),
        channel_affinity=tuple(channel_pref[c] * rng.lognormvariate(0.0, 0.2) for c in CHANNELS),
    )
