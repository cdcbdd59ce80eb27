"""decide(): eligibility → guardrails → assignment → policy → one durable log row.

The hot path reads a cached configuration snapshot and a cached model, may run one
indexed count per frequency cap, reads the share and budget counts from a per-process
cache (:mod:`hpe_core.decide.guardrails`, refreshed by one grouped query every few seconds), and
writes one INSERT. No read-modify-write.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import random
import threading
import time
import uuid
from collections.abc import Callable, Mapping

from sqlalchemy import func, insert, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from hpe_core.decide import assignment, consent, eligibility
from hpe_core.decide.features import ActionCatalog, decision_features
from hpe_core.decide.guardrails import (
    REFRESH_SECONDS,
    UsageCache,
    affordable,
    over_share,
    period_start,
    unit_cost,
)
from hpe_core.decide.policy.exploration import vw_arguments
from hpe_core.decide.policy.serving import ModelRegistry
from hpe_core.errors import Conflict, InvalidInput, NotFound
from hpe_core.store.models import Config, Decision, utcnow
from hpe_core.tenancy import activities
from hpe_core.tenancy.workspaces import Principal

_DECISIONS = Decision.__table__
_INSERT_DECISION = insert(_DECISIONS)
MAX_USER_ID_LENGTH = 256


@dataclasses.dataclass(frozen=True)
class DecisionRequest:
    user_id: str
    channel: str
    context: Mapping = dataclasses.field(default_factory=dict)
    candidates: list[str] | None = None


@dataclasses.dataclass(frozen=True)
class ConfigSnapshot:
    """What the hot path needs of a configuration, prepared once per settings version."""

    id: uuid.UUID
    workspace_id: str
    status: str
    settings: dict
    actions: dict[str, dict]
    catalog: ActionCatalog
    vw_args: str
    loaded_at: float

    @classmethod
    def of(cls, config: Config) -> ConfigSnapshot:
        settings = config.settings
        return cls(
            id=config.id,
            workspace_id=config.workspace_id,
            status=config.status,
            settings=settings,
            actions={a["id"]: a for a in settings["actions"]},
            catalog=ActionCatalog(settings["actions"]),
            vw_args=vw_arguments(settings["exploration"]),
            loaded_at=time.monotonic(),
        )


class DecisionEngine:
    """Serves decisions for one process: caches configurations and models.

    :param session_factory: for model loads and configuration reads
    :param config_ttl: seconds a configuration snapshot is trusted; a status change made
        in another process (the kill switch) takes effect within this delay
    :param channel_costs: channel -> cost per decision (the connectors' settings), for
        ``guardrails.budget``
    :param guardrail_refresh: seconds the share and budget counts are trusted before they
        are re-read (other processes' decisions are seen within this delay)
    """

    def __init__(
        self,
        session_factory: Callable[[], Session],
        *,
        config_ttl: float = 1.0,
        model_check_interval: float = 1.0,
        rng: random.Random | None = None,
        channel_costs: Mapping[str, float] | None = None,
        guardrail_refresh: float = REFRESH_SECONDS,
    ):
        self._session_factory = session_factory
        self.usage = UsageCache(refresh_interval=guardrail_refresh, channel_costs=channel_costs)
        self.models = ModelRegistry(session_factory, check_interval=model_check_interval)
        self.config_ttl = config_ttl
        self._snapshots: dict[uuid.UUID, ConfigSnapshot] = {}
        self._rng = rng or random.Random()
        self._rng_lock = threading.Lock()

    def invalidate(self, config_id: uuid.UUID) -> None:
        """Drop a cached configuration (call after changing it in this process)."""
        self._snapshots.pop(config_id, None)
        self.usage.invalidate(config_id)

    def snapshot(
        self, session: Session, principal: Principal, config_id: uuid.UUID
    ) -> ConfigSnapshot:
        """The cached configuration, reloaded when older than ``config_ttl``.

        :raises NotFound: for an unknown or another workspace's configuration
        """
        snap = self._snapshots.get(config_id)
        if snap is None or time.monotonic() - snap.loaded_at > self.config_ttl:
            config = session.get(Config, config_id, populate_existing=True)
            if config is None:
                raise NotFound(f"No configuration {config_id}.")
            snap = ConfigSnapshot.of(config)
            self._snapshots[config_id] = snap
        if snap.workspace_id != principal.workspace_id:
            raise NotFound(f"No configuration {config_id}.")
        return snap

    def decide(
        self,
        session: Session,
        principal: Principal,
        config_id: uuid.UUID,
        request: DecisionRequest,
        now: dt.datetime | None = None,
    ) -> dict:
        """Choose one action for one user at one touchpoint and log it with its propensity.

        :returns: the decision response (``action_id`` None with a ``reason`` when nothing
            is eligible; nothing is logged then)
        :raises NotFound: unknown configuration
        :raises Conflict: the configuration is PAUSED or INACTIVE (the kill switch)
        :raises InvalidInput: unknown channel or candidates
        """
        now = now or utcnow()
        snap = self.snapshot(session, principal, config_id)
        if snap.status != "ACTIVE":
            raise Conflict(f"Configuration {config_id} is {snap.status}: no decisions are made.")
        settings = snap.settings
        _check_request(snap, request)

        # 1. Eligibility
        if not eligibility.campaign_running(settings["campaign"], now):
            return _nothing("campaign_not_running")
        if eligibility.in_quiet_hours(settings["schedule"], request.context, now):
            return _nothing("quiet_hours")
        # .get: configurations stored before channel exclusions existed lack the key.
        exclusions = settings["guardrails"].get("channel_exclusions")
        if exclusions and eligibility.excluded(exclusions, request.channel, request.context):
            return _nothing("excluded")
        # An unsubscribe, bounce or complaint stops the channel for this user (one lookup).
        if not consent.allowed(session, snap.workspace_id, request.channel, request.user_id):
            return _nothing("no_consent")
        eligible = eligibility.eligible_actions(
            settings["actions"], request.channel, request.context, request.candidates
        )
        if not eligible:
            return _nothing("no_eligible_action")

        # 2. Guardrails
        if _over_frequency_cap(session, snap, request, now):
            return _nothing("frequency_cap")
        # Share and budget: cached counts (soft caps, see hpe_core.decide.guardrails).
        guardrails = settings["guardrails"]
        budget, max_share = guardrails.get("budget"), guardrails.get("max_action_share")
        usage = None
        if budget is not None or max_share is not None:
            usage = self.usage.usage(session, snap.id, settings, now)
        if budget is not None:
            # Holdout decisions spend too: the budget applies to both variants.
            costs = {a: self._cost(snap, a, request.channel) for a in eligible}
            eligible = affordable(eligible, costs, usage.spend, budget["amount"])
            if not eligible:
                self._budget_exhausted(snap, budget, usage.spend, now)
                return _nothing("budget_exhausted")

        # 3. Assignment
        variant = assignment.variant(snap.id, request.user_id, settings["holdout"]["percent"])
        if variant == "treatment" and max_share is not None:
            # The holdout is the control: its baseline keeps every action.
            capped = over_share(usage.counts, max_share)
            eligible = [a for a in eligible if a not in capped]
            if not eligible:
                return _nothing("max_action_share")

        # 4. Policy: the model scores every decision (apprentice mode reports agreement);
        # it serves treatment unless the automation level is manual.
        model = self.models.get(snap.id, snap.vw_args)
        features = decision_features(request.channel, request.context)
        scores = model.learner.predict(features, snap.catalog.lines(eligible))
        model_action = eligible[max(range(len(eligible)), key=scores.__getitem__)]
        if variant == "treatment" and settings["automation"] != "manual":
            policy, probabilities = "model", scores
        else:
            baseline = settings["holdout"]["baseline"]
            policy, probabilities = "baseline", baseline_probabilities(baseline, eligible)
        index = self._sample(probabilities)

        # 5. The durable log: one INSERT.
        decision_id = uuid.uuid4()
        # Core insert on the session's connection: one row, no ORM bookkeeping.
        session.connection().execute(
            _INSERT_DECISION,
            [
                {
                    "id": decision_id,
                    "workspace_id": snap.workspace_id,
                    "config_id": snap.id,
                    "user_id": request.user_id,
                    "channel": request.channel,
                    "context": dict(request.context),
                    "features": features,
                    "eligible": eligible,
                    "probabilities": probabilities,
                    "action_id": eligible[index],
                    "probability": probabilities[index],
                    "variant": variant,
                    "policy": policy,
                    "model_version": model.version,
                    "model_action_id": model_action,
                    "source": "live",
                    "created_at": now,
                    "window_closes_at": now
                    + dt.timedelta(seconds=settings["reward"]["wait_seconds"]),
                }
            ],
        )
        if usage is not None:
            chosen = eligible[index]
            self.usage.note(snap.id, chosen, self._cost(snap, chosen, request.channel), now)
        ranking = sorted(
            (
                {"action_id": a, "probability": p}
                for a, p in zip(eligible, probabilities, strict=True)
            ),
            key=lambda item: -item["probability"],
        )
        return {
            "decision_id": decision_id,
            "action_id": eligible[index],
            "action": snap.actions[eligible[index]],
            "probability": probabilities[index],
            "variant": variant,
            "model_version": model.version,
            "ranking": ranking,
        }

    def _cost(self, snap: ConfigSnapshot, action_id: str, channel: str) -> float:
        return unit_cost(snap.actions[action_id], channel, self.usage.channel_costs)

    def _budget_exhausted(
        self, snap: ConfigSnapshot, budget: Mapping, spend: float, now: dt.datetime
    ) -> None:
        """Log ``guardrail.budget_exhausted`` once per configuration, period and process."""
        start = period_start(budget["period"], now.astimezone(dt.UTC).date())
        period_key = f"{start.isoformat() if start else 'total'}:{budget['amount']}"
        if not self.usage.first_exhaustion(snap.id, period_key):
            return
        # Its own short transaction: a decision that finds nothing eligible commits nothing.
        session = self._session_factory()
        try:
            activities.record(
                session,
                workspace_id=snap.workspace_id,
                config_id=snap.id,
                type="guardrail.budget_exhausted",
                actor="engine",
                data={
                    "amount": budget["amount"],
                    "period": budget["period"],
                    "period_start": start.isoformat() if start else None,
                    "spend": round(spend, 6),
                },
            )
            session.commit()
        except SQLAlchemyError:
            # The decision still answers; the next exhausted decision tries again.
            session.rollback()
            self.usage.forget_exhaustion(snap.id, period_key)
        finally:
            session.close()

    def _sample(self, probabilities: list[float]) -> int:
        with self._rng_lock:
            draw = self._rng.random()
        cumulative = 0.0
        for index, probability in enumerate(probabilities):
            cumulative += probability
            if draw < cumulative:
                return index
        return len(probabilities) - 1  # rounding: the sum may fall just short of 1


def _nothing(reason: str) -> dict:
    return {
        "decision_id": None,
        "action_id": None,
        "action": None,
        "probability": None,
        "variant": None,
        "model_version": None,
        "ranking": [],
        "reason": reason,
    }


def _check_request(snap: ConfigSnapshot, request: DecisionRequest) -> None:
    errors = {}
    if request.channel not in snap.settings["channels"]:
        channels = ", ".join(snap.settings["channels"])
        errors["channel"] = [f"Not a channel of this configuration: use one of {channels}."]
    if request.candidates is not None:
        unknown = [c for c in request.candidates if c not in snap.actions]
        if unknown:
            errors["candidates"] = [f"Unknown action ids: {', '.join(unknown[:10])}."]
    if errors:
        raise InvalidInput("Invalid decision request.", errors)


def baseline_probabilities(baseline: object, eligible: list[str]) -> list[float]:
    """The holdout baseline's distribution over the eligible actions (also evaluated offline).

    :param baseline: the settings' ``holdout.baseline``: ``"random"`` or ``{"action_id"}``
    :param eligible: the eligible action ids, at least one
    :returns: one probability per eligible action, in their order
    """
    if isinstance(baseline, dict) and baseline["action_id"] in eligible:
        return [1.0 if a == baseline["action_id"] else 0.0 for a in eligible]
    # Random baseline (or the fixed action is not eligible here): uniform, so its
    # propensities are known and its decisions are good training data.
    return [1.0 / len(eligible)] * len(eligible)


def _over_frequency_cap(
    session: Session, snap: ConfigSnapshot, request: DecisionRequest, now: dt.datetime
) -> bool:
    for cap in snap.settings["guardrails"]["frequency_caps"]:
        if cap["channel"] != request.channel:
            continue
        since = now - dt.timedelta(hours=cap["per_hours"])
        count = session.scalar(
            select(func.count())
            .select_from(_DECISIONS)
            .where(
                _DECISIONS.c.config_id == snap.id,
                _DECISIONS.c.user_id == request.user_id,
                _DECISIONS.c.created_at >= since,
                _DECISIONS.c.channel == request.channel,
            )
        )
        if count >= cap["max"]:
            return True
    return False


def parse_request(body: Mapping) -> DecisionRequest:
    """Build a request from the API body (already shape-checked by the web schema)."""
    user_id = body["user_id"]
    if not user_id or len(user_id) > MAX_USER_ID_LENGTH:
        raise InvalidInput("Invalid user_id.", {"user_id": ["1-256 characters."]})
    return DecisionRequest(
        user_id=user_id,
        channel=body["channel"],
        context=body.get("context") or {},
        candidates=body.get("candidates"),
    )
