"""Scenarios of the simulated audience whose truth changes: for ``hpe simulate --scenario``,
the benchmarks in ``bench/`` and the tests.

:mod:`hpe_core.simulation` is one stable world. A :class:`Scenario` is that world over a
run of decisions, with a known moment at which something changes:

- ``stable``: nothing changes.
- ``shift``: at :attr:`Scenario.change_at` every segment's favourite offers move (each
  segment takes another segment's tastes, :data:`SHIFTED_TASTES`) and one user in three
  flips price sensitivity (a bargain hunter stops caring about discounts and the other way
  round). What the campaign tool sends (the context) does not change.
- ``new-offer``: the offer :data:`NEW_OFFER` is added at :attr:`Scenario.change_at`; it is
  the best offer for a large share of touchpoints (loyal premium customers and new
  visitors like it most).
- ``channels``: people differ strongly in the channel they respond on (one preferred
  channel each, :data:`PREFERRED_BOOST`), and the context carries the signals a CRM has
  about it (email engagement, app and web sessions, ad clicks). Touchpoints come without
  a channel: the caller lets the engine choose it (``"channel": "auto"``).

Everything is seeded, as in :mod:`hpe_core.simulation`; the oracle of each scenario knows
the truth in force at that decision.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
import random
from collections.abc import Iterator

from hpe_core import simulation
from hpe_core.simulation import (
    CHANNELS,
    OFFERS,
    SEGMENTS,
    Offer,
    Population,
    Touchpoint,
    User,
)

SCENARIOS = ("stable", "shift", "new-offer", "channels")

#: shift: segment -> the segment whose tastes it takes after the change (a derangement).
SHIFTED_TASTES = {
    "bargain_hunter": "lapsed",
    "loyal_premium": "new_visitor",
    "new_visitor": "loyal_premium",
    "lapsed": "bargain_hunter",
}
#: shift: users whose price sensitivity flips (s -> 1 - s), one in this many.
FLIP_ONE_IN = 3

#: new-offer: the offer added mid-run. Affinities in SEGMENTS order; its category is new,
#: so only its other features (a mid price band, a 15% discount) tell the model anything.
NEW_OFFER = Offer("holiday-gift-guide", "gifts", 15, "mid", "lifestyle", (1.3, 3.6, 3.6, 1.2))

#: channels: the click multiplier of a person's preferred channel, and of the others.
PREFERRED_BOOST = 2.6
OTHER_CHANNELS = 0.45
#: channels: how likely each segment is to prefer email, web, ads.
_PREFERENCE_SHARE = {
    "bargain_hunter": (0.40, 0.30, 0.30),
    "loyal_premium": (0.50, 0.35, 0.15),
    "new_visitor": (0.20, 0.45, 0.35),
    "lapsed": (0.40, 0.20, 0.40),
}


@dataclasses.dataclass(frozen=True)
class Scenario:
    """A simulated run of ``decisions`` touchpoints in which something may change.

    :param name: one of :data:`SCENARIOS`
    :param decisions: the run's length
    :param change_at: the decision index (0-based) from which the change holds; None for
        ``stable`` and ``channels``
    :param seed: the population's and the touchpoints' seed
    """

    name: str
    decisions: int
    change_at: int | None = None
    seed: int = 1

    @classmethod
    def make(
        cls, name: str, decisions: int, *, seed: int = 1, change_fraction: float = 0.5
    ) -> Scenario:
        """A scenario by name; ``shift`` and ``new-offer`` change after ``change_fraction``
        of the decisions.

        :raises ValueError: for an unknown name
        """
        if name not in SCENARIOS:
            raise ValueError(f"Unknown scenario {name!r}; use one of {', '.join(SCENARIOS)}.")
        change_at = int(decisions * change_fraction) if name in ("shift", "new-offer") else None
        return cls(name, decisions, change_at, seed)

    # --- what the engine is told -------------------------------------------------------

    def offers(self, index: int | None = None) -> tuple[Offer, ...]:
        """The offers of the configuration at decision ``index`` (None: at the end)."""
        if self.name == "new-offer" and (index is None or index >= self.change_at):
            return (*OFFERS, NEW_OFFER)
        return OFFERS

    def all_offers(self) -> tuple[Offer, ...]:
        return self.offers(None)

    def population(self) -> Population:
        return Population(seed=self.seed)

    def touchpoints(self, seed: int | None = None) -> Iterator[tuple[int, Touchpoint]]:
        """``(index, touchpoint)`` for the whole run. In ``channels`` the touchpoint's
        channel is None and the context has no ``channel`` key, but CRM signals."""
        population = self.population()
        stream = population.touchpoints(self.decisions, seed=self.seed if seed is None else seed)
        for index, touch in enumerate(stream):
            if self.name == "channels":
                context = {k: v for k, v in touch.context.items() if k != "channel"}
                context.update(channel_signals(touch.user))
                touch = Touchpoint(touch.user, None, touch.hour, context)  # type: ignore[arg-type]
            yield index, touch

    # --- the truth ---------------------------------------------------------------------

    def changed(self, index: int) -> bool:
        return self.change_at is not None and index >= self.change_at

    def probability(self, user: User, offer: Offer, channel: str, index: int) -> float:
        """The true click probability at decision ``index``."""
        if self.name == "shift" and self.changed(index):
            user, offer = _shifted(user, offer)
        elif self.name == "channels":
            user = _with_channel_preference(user)
        return simulation.engagement_probability(user, offer, channel)

    def outcomes(
        self, user: User, offer: Offer, channel: str, index: int, rng: random.Random
    ) -> list[dict]:
        """What happens after ``offer`` is delivered on ``channel`` at decision ``index``."""
        if self.name == "shift" and self.changed(index):
            user, offer = _shifted(user, offer)
        elif self.name == "channels":
            user = _with_channel_preference(user)
        return simulation.outcomes(user, offer, channel, rng)

    def oracle(self, touch: Touchpoint, index: int) -> tuple[Offer, str, float]:
        """The best (offer, channel) knowing the latent traits, and its click probability.

        On a touchpoint with a channel, only that channel; in ``channels``, any.
        """
        channels = (touch.channel,) if touch.channel is not None else CHANNELS
        best = None
        for channel in channels:
            for offer in self.offers(index):
                p = self.probability(touch.user, offer, channel, index)
                if best is None or p > best[2]:
                    best = (offer, channel, p)
        return best

    def random_rate(self, touch: Touchpoint, index: int) -> float:
        """The expected click rate of a uniformly random offer (and channel) here."""
        channels = (touch.channel,) if touch.channel is not None else CHANNELS
        rates = [
            self.probability(touch.user, offer, channel, index)
            for channel in channels
            for offer in self.offers(index)
        ]
        return sum(rates) / len(rates)


def flipped(user: User) -> bool:
    """Whether ``user`` is among the one in :data:`FLIP_ONE_IN` whose price sensitivity
    flips in ``shift`` (a fixed hash of the user id)."""
    digest = hashlib.sha256(user.user_id.encode()).digest()
    return digest[0] % FLIP_ONE_IN == 0


def _shifted(user: User, offer: Offer) -> tuple[User, Offer]:
    """The same person and offer after the shift: the segment's column of affinities is
    another segment's, and a third of users flip price sensitivity."""
    source = SEGMENTS.index(SHIFTED_TASTES[user.segment])
    affinity = list(offer.affinity)
    affinity[SEGMENTS.index(user.segment)] = offer.affinity[source]
    offer = dataclasses.replace(offer, affinity=tuple(affinity))
    if flipped(user):
        user = dataclasses.replace(user, price_sensitivity=1.0 - user.price_sensitivity)
    return user, offer


def preferred_channel(user: User) -> str:
    """The channel ``user`` responds on best in ``channels`` (a fixed hash of the id)."""
    digest = hashlib.sha256(b"channel:" + user.user_id.encode()).digest()
    draw = int.from_bytes(digest[:4], "big") / 2**32
    cumulative = 0.0
    for channel, share in zip(CHANNELS, _PREFERENCE_SHARE[user.segment], strict=True):
        cumulative += share
        if draw < cumulative:
            return channel
    return CHANNELS[-1]


def _with_channel_preference(user: User) -> User:
    preferred = preferred_channel(user)
    affinity = tuple(
        base * (PREFERRED_BOOST if channel == preferred else OTHER_CHANNELS)
        for base, channel in zip(user.channel_affinity, CHANNELS, strict=True)
    )
    return dataclasses.replace(user, channel_affinity=affinity)


def channel_signals(user: User) -> dict:
    """What a CRM knows about a person's channels: noisy signs of the preferred one."""
    rng = random.Random(f"signals-{user.user_id}")
    preferred = preferred_channel(user)

    def count(channel: str, high: float, low: float) -> int:
        mean = high if channel == preferred else low
        return max(0, int(rng.lognormvariate(math.log(mean), 0.6)))

    return {
        "email_opens_90d": count("email", 9, 2),
        "web_sessions_30d": count("web", 8, 2),
        "ad_clicks_90d": count("ads", 4, 1),
        "app_installed": rng.random() < (0.7 if preferred == "web" else 0.25),
    }


# --- reports: what was served, against the truth ------------------------------------------


@dataclasses.dataclass(frozen=True)
class Served:
    """One decision of a run: its position in the scenario, arm, offer, channel and the
    true click probability of what was served."""

    position: int
    variant: str
    action_id: str
    channel: str
    truth: float


@dataclasses.dataclass(frozen=True)
class References:
    """Per position of the run: the oracle's click probability and choice, and a random
    choice's expected click probability."""

    oracle: list[float]
    oracle_offer: list[str]
    oracle_channel: list[str]
    random: list[float]


def references(scenario: Scenario) -> References:
    """The oracle and random choice on the scenario's touchpoints."""
    oracle, offers, channels, rand = [], [], [], []
    for index, touch in scenario.touchpoints():
        offer, channel, p = scenario.oracle(touch, index)
        oracle.append(p)
        offers.append(offer.id)
        channels.append(channel)
        rand.append(scenario.random_rate(touch, index))
    return References(oracle, offers, channels, rand)


def phases(scenario: Scenario) -> dict[str, tuple[int, int]]:
    """The position ranges a report shows: the whole run and its last fifth, or before
    the change, after it and the two halves after it."""
    n = scenario.decisions
    if scenario.change_at is None:
        return {"all": (0, n), "last 20%": (n - n // 5, n)}
    c = scenario.change_at
    half = c + (n - c) // 2
    return {
        "before": (0, c),
        "after": (c, n),
        "after, 1st half": (c, half),
        "after, 2nd half": (half, n),
    }


def mean_between(values: list[float], positions: list[int], lo: int, hi: int) -> float | None:
    """The mean of ``values`` whose position is in ``[lo, hi)`` (None: there is none)."""
    chosen = [v for v, p in zip(values, positions, strict=True) if lo <= p < hi]
    return sum(chosen) / len(chosen) if chosen else None


def report(scenario: Scenario, served: list[Served], refs: References | None = None) -> dict:
    """Expected click rates per phase: treatment and holdout (what was served), the oracle
    and random choice (on the same touchpoints), and for ``new-offer`` the new offer's
    share of the treatment after its addition, beside the oracle's share.

    :returns: ``{"phases": {phase: {"treatment", "holdout", "oracle", "random"}},
        "new_offer": [{"from", "to", "share", "oracle_share"}] (new-offer only)}``
    """
    refs = refs or references(scenario)
    everywhere = list(range(scenario.decisions))
    out: dict = {"phases": {}}
    for name, (lo, hi) in phases(scenario).items():
        row = {}
        for variant in ("treatment", "holdout"):
            arm = [s for s in served if s.variant == variant]
            row[variant] = mean_between([s.truth for s in arm], [s.position for s in arm], lo, hi)
        row["oracle"] = mean_between(refs.oracle, everywhere, lo, hi)
        row["random"] = mean_between(refs.random, everywhere, lo, hi)
        out["phases"][name] = row
    if scenario.name == "new-offer":
        out["new_offer"] = new_offer_shares(scenario, served, refs)
    return out


def new_offer_shares(
    scenario: Scenario, served: list[Served], refs: References, window: int = 500
) -> list[dict]:
    """The new offer's share of the treatment's decisions in windows of ``window``
    decisions after it was added, and the share the oracle gives it there."""
    new_id, start = NEW_OFFER.id, scenario.change_at
    rows = []
    for lo in range(start, scenario.decisions, window):
        hi = min(lo + window, scenario.decisions)
        arm = [s for s in served if s.variant == "treatment" and lo <= s.position < hi]
        oracle = refs.oracle_offer[lo:hi]
        if arm and oracle:
            rows.append(
                {
                    "from": lo - start,
                    "to": hi - start,
                    "share": sum(s.action_id == new_id for s in arm) / len(arm),
                    "oracle_share": oracle.count(new_id) / len(oracle),
                }
            )
    return rows
