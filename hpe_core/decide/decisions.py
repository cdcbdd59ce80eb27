"""decide(): eligibility → guardrails → assignment → choice → one durable log row.

:meth:`DecisionEngine.decide` runs these steps, each a function with its name, and
returns a :class:`~hpe_core.decide.results.Decision` (logged) or a
:class:`~hpe_core.decide.results.NoDecision` with its reason (nothing logged): values, not
the API's JSON, which :func:`hpe_core.deliver.touchpoints.response` makes of them.

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

from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from hpe_core.decide import assignment, consent, decision_log, eligibility, exclusions
from hpe_core.decide.context_limits import check_context
from hpe_core.decide.features import ActionCatalog, decision_features, pair_features
from hpe_core.decide.guardrails import (
    REFRESH_SECONDS,
    Usage,
    UsageCache,
    affordable,
    over_share,
    period_start,
    unit_cost,
)
from hpe_core.decide.policy.exploration import vw_arguments
from hpe_core.decide.policy.serving import ModelRegistry
from hpe_core.decide.results import Decision, DryRun, NoDecision, NoDecisionReason
from hpe_core.errors import Conflict, InvalidInput, NotFound
from hpe_core.store.limits import MAX_USER_ID_LENGTH
from hpe_core.store.models import Config, utcnow
from hpe_core.store.models import Decision as DecisionRow
from hpe_core.store.vocabulary import ConfigStatus, DecisionSource, Policy, Variant
from hpe_core.tenancy import activities, client_access
from hpe_core.tenancy.configs import settings_of
from hpe_core.tenancy.settings_types import Action, AutomationLevel, Budget, Holdout, Settings
from hpe_core.tenancy.workspaces import Principal

_DECISIONS = DecisionRow.__table__


@dataclasses.dataclass(frozen=True)
class DecisionRequest:
    """One decision to make.

    :param decision_id: log it under this id instead of a new one: a caller that names its
        own events (the Personalizer routes) gets one decision per event, since a second
        insert with the same id fails on the primary key
    :param deferred: log it as ``deferred`` (:data:`DEFERRED_UNTIL`): neither counted nor
        learned until the caller activates it
    :param channels: with ``channel`` :data:`AUTO`, the channels the engine may choose
        among (empty: all of the configuration's); the engine then chooses the (action,
        channel) pair
    """

    user_id: str
    channel: str
    context: Mapping = dataclasses.field(default_factory=dict)
    candidates: list[str] | None = None
    decision_id: uuid.UUID | None = None
    deferred: bool = False
    channels: tuple[str, ...] = ()


#: ``channel`` of a request that lets the engine choose the channel (``"channel": "auto"``,
#: or a list of allowed channels).
AUTO = "auto"


#: The reward window of a deferred decision: it never closes, so the decision is never
#: learned nor given the default reward, until activating it opens a real window.
DEFERRED_UNTIL = dt.datetime(9000, 1, 1, tzinfo=dt.UTC)


class _Refused(Exception):
    """A step found nothing to offer: :meth:`DecisionEngine.decide` answers ``reason``."""

    def __init__(self, reason: NoDecisionReason):
        self.reason = reason


_REASON_ORDER = list(NoDecisionReason)


@dataclasses.dataclass(frozen=True, slots=True)
class _Choice:
    """What the policy step chose, for the log."""

    policy: Policy
    probabilities: list[float]
    index: int
    features: str
    model_version: int
    model_action_id: str
    #: The channel of each eligible entry when the engine chooses the channel, else None.
    channels: list[str] | None = None


@dataclasses.dataclass(frozen=True)
class ConfigSnapshot:
    """What the hot path needs of a configuration, prepared once per settings version."""

    id: uuid.UUID
    workspace_id: str
    status: str
    settings: Settings
    catalog: ActionCatalog
    vw_args: str
    loaded_at: float

    @classmethod
    def of(cls, config: Config) -> ConfigSnapshot:
        settings = settings_of(config)
        return cls(
            id=config.id,
            workspace_id=config.workspace_id,
            status=config.status,
            settings=settings,
            catalog=ActionCatalog(settings.actions),
            vw_args=vw_arguments(settings.exploration),
            loaded_at=time.monotonic(),
        )

    def action(self, action_id: str) -> Action:
        return self.settings.actions_by_id[action_id]


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

    def prepare_batch(
        self,
        session: Session,
        principal: Principal,
        config_id: uuid.UUID,
        requests: list[DecisionRequest],
        now: dt.datetime | None = None,
    ) -> None:
        """Before a batch collected with :func:`hpe_core.decide.decision_log.collecting`:
        read its users' recent decisions for the frequency caps in one query (nothing to
        read without caps). The decisions then decide exactly as one by one.

        :raises NotFound: unknown configuration
        """
        caps = self.snapshot(session, principal, config_id).settings.guardrails.frequency_caps
        if not caps:
            return
        now = now or utcnow()
        # The widest window, from now: every later decision's window starts inside it.
        since = now - dt.timedelta(hours=max(cap.per_hours for cap in caps))
        users = {request.user_id for request in requests}
        decision_log.prefetch_recent(
            session, config_id, users, {cap.channel for cap in caps}, since
        )

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
    ) -> Decision | NoDecision:
        """Choose one action for one user at one touchpoint and log it with its propensity.

        :returns: the logged :class:`Decision`, or :class:`NoDecision` with its reason
            when nothing may be offered (nothing is logged then)
        :raises NotFound: unknown configuration
        :raises Forbidden: a publishable key, on a channel that is not client-side or on
            a configuration that requires a secret key (nothing is read or logged)
        :raises Conflict: the configuration is PAUSED or INACTIVE (the kill switch)
        :raises InvalidInput: unknown channel or candidates
        """
        now = now or utcnow()
        snap = self.snapshot(session, principal, config_id)
        for channel in _requested_channels(snap, request):
            client_access.check_decision(snap.settings, principal, channel)
        _check_decidable(snap, request)
        try:
            eligible, channels, usage = self._candidates(session, snap, request, now)
            variant, eligible, channels = _assignment(snap, request, eligible, usage, channels)
        except _Refused as refused:
            return NoDecision(refused.reason)
        choice = self._choose(snap, request, variant, eligible, channels)
        return self._log(session, snap, request, variant, eligible, choice, usage, now)

    def try_out(
        self,
        session: Session,
        principal: Principal,
        config_id: uuid.UUID,
        request: DecisionRequest,
        now: dt.datetime | None = None,
    ) -> DryRun:
        """What :meth:`decide` would answer now, without logging or spending anything.

        The same steps run (consent and frequency caps are read, the model scores), but no
        decision row is written, no cap or budget count moves and no activity is recorded:
        the dashboard's "try it", and ``POST /{id}/decisions?dry_run=true``. The answer
        also says why each action that was left out was left out.

        :raises: what :meth:`decide` raises
        """
        now = now or utcnow()
        snap = self.snapshot(session, principal, config_id)
        for channel in _requested_channels(snap, request):
            client_access.check_decision(snap.settings, principal, channel)
        _check_decidable(snap, request)
        # Why an action is out is said per channel: not for a request on several channels.
        explain = request.channel != AUTO
        usage = None
        try:
            eligible, channels, usage = self._candidates(session, snap, request, now, log=False)
            variant, eligible, channels = _assignment(snap, request, eligible, usage, channels)
        except _Refused as refused:
            excluded = exclusions.explain(snap.settings, request) if explain else {}
            return DryRun(NoDecision(refused.reason), excluded)
        choice = self._choose(snap, request, variant, eligible, channels)
        decision = _result(None, snap, request, variant, eligible, choice)
        excluded = exclusions.explain(snap.settings, request, kept=eligible) if explain else {}
        return DryRun(decision, excluded)

    # --- the steps ---------------------------------------------------------------------

    def _candidates(
        self,
        session: Session,
        snap: ConfigSnapshot,
        request: DecisionRequest,
        now: dt.datetime,
        *,
        log: bool = True,
    ) -> tuple[list[str], list[str] | None, Usage | None]:
        """Eligibility and guardrails: the eligible actions, and their channels when the
        engine chooses the channel (each allowed channel checked on its own: consent,
        exclusions, frequency caps and the budget apply per channel).

        :returns: ``(action ids, channel of each or None, cached counts)``
        :raises _Refused: nothing is left; on several channels, the reason of the channel
            that got furthest through the steps
        """
        if request.channel != AUTO:
            eligible = _eligibility(session, snap, request, now)
            eligible, usage = self._guardrails(session, snap, request, eligible, now, log=log)
            return eligible, None, usage
        actions: list[str] = []
        channels: list[str] = []
        usage, reasons = None, []
        for channel in _requested_channels(snap, request):
            on_channel = dataclasses.replace(request, channel=channel, channels=())
            try:
                eligible = _eligibility(session, snap, on_channel, now)
                eligible, counts = self._guardrails(
                    session, snap, on_channel, eligible, now, log=log
                )
            except _Refused as refused:
                reasons.append(refused.reason)
                continue
            usage = usage or counts
            actions += eligible
            channels += [channel] * len(eligible)
        if not actions:
            raise _Refused(max(reasons, key=_REASON_ORDER.index))
        return actions, channels, usage

    def _guardrails(
        self,
        session: Session,
        snap: ConfigSnapshot,
        request: DecisionRequest,
        eligible: list[str],
        now: dt.datetime,
        *,
        log: bool = True,
    ) -> tuple[list[str], Usage | None]:
        """Frequency caps, then the budget: the actions still affordable, and the cached
        counts when a share or budget guardrail needs them.

        :param log: record ``guardrail.budget_exhausted`` (not in a dry run)
        :raises _Refused: ``frequency_cap`` or ``budget_exhausted``
        """
        if _over_frequency_cap(session, snap, request, now):
            raise _Refused(NoDecisionReason.FREQUENCY_CAP)
        # Share and budget: cached counts (soft caps, see hpe_core.decide.guardrails).
        guardrails = snap.settings.guardrails
        if guardrails.budget is None and guardrails.max_action_share is None:
            return eligible, None
        usage = self.usage.usage(session, snap.id, snap.settings, now)
        budget = guardrails.budget
        if budget is not None:
            # Holdout decisions spend too: the budget applies to both variants.
            costs = {a: self._cost(snap, a, request.channel) for a in eligible}
            eligible = affordable(eligible, costs, usage.spend, budget.amount)
            if not eligible:
                if log:
                    self._budget_exhausted(snap, budget, usage.spend, now)
                raise _Refused(NoDecisionReason.BUDGET_EXHAUSTED)
        return eligible, usage

    def _choose(
        self,
        snap: ConfigSnapshot,
        request: DecisionRequest,
        variant: Variant,
        eligible: list[str],
        channels: list[str] | None = None,
    ) -> _Choice:
        """The policy: the model scores every decision (apprentice mode reports agreement);
        it serves treatment unless the automation level is manual, else the baseline does.

        :param channels: the channel of each eligible entry when the engine chooses the
            channel: each (action, channel) pair is scored as that action on that channel
        """
        model = self.models.get(snap.id, snap.vw_args)
        if channels is None:
            features = decision_features(request.channel, request.context)
            lines = snap.catalog.lines(eligible)
        else:
            features = pair_features(request.context)
            lines = [snap.catalog.pair_line(a, c) for a, c in zip(eligible, channels, strict=True)]
        scores = model.learner.predict(features, lines)
        model_action = eligible[max(range(len(eligible)), key=scores.__getitem__)]
        settings = snap.settings
        if variant == Variant.TREATMENT and settings.automation != AutomationLevel.MANUAL:
            # Actions added since the model last learned get their trial share.
            share = settings.learning.new_actions.trial_share
            policy = Policy.MODEL
            probabilities = model.serving_distribution(scores, eligible, share)
        else:
            policy = Policy.BASELINE
            probabilities = baseline_probabilities(settings.holdout, eligible)
        return _Choice(
            policy=policy,
            probabilities=probabilities,
            index=self._sample(probabilities),
            features=features,
            model_version=model.version,
            model_action_id=model_action,
            channels=channels,
        )

    def _log(
        self,
        session: Session,
        snap: ConfigSnapshot,
        request: DecisionRequest,
        variant: Variant,
        eligible: list[str],
        choice: _Choice,
        usage: Usage | None,
        now: dt.datetime,
    ) -> Decision:
        """The durable log: one INSERT, then this process's share and budget counts."""
        decision_id = request.decision_id or uuid.uuid4()
        chosen = eligible[choice.index]
        channel = request.channel if choice.channels is None else choice.channels[choice.index]
        if request.deferred:
            source, window_closes_at = DecisionSource.DEFERRED, DEFERRED_UNTIL
        else:
            source = DecisionSource.LIVE
            window_closes_at = now + dt.timedelta(seconds=snap.settings.reward.wait_seconds)
        # One INSERT now, or kept for the batch's single COPY (decision_log.collecting).
        decision_log.write(
            session,
            {
                "id": decision_id,
                "workspace_id": snap.workspace_id,
                "config_id": snap.id,
                "user_id": request.user_id,
                "channel": channel,
                "context": dict(request.context),
                "features": choice.features,
                "eligible": eligible,
                "probabilities": choice.probabilities,
                "action_id": chosen,
                "probability": choice.probabilities[choice.index],
                "variant": variant,
                "policy": choice.policy,
                "model_version": choice.model_version,
                "model_action_id": choice.model_action_id,
                "source": source,
                "created_at": now,
                "window_closes_at": window_closes_at,
                "eligible_channels": choice.channels,
            },
        )
        # A deferred decision spends nothing until activated (the counts read live ones).
        if usage is not None and not request.deferred:
            self.usage.note(snap.id, chosen, self._cost(snap, chosen, channel), now)
        return _result(decision_id, snap, request, variant, eligible, choice)

    # --- helpers -----------------------------------------------------------------------

    def _cost(self, snap: ConfigSnapshot, action_id: str, channel: str) -> float:
        return unit_cost(snap.action(action_id), channel, self.usage.channel_costs)

    def _budget_exhausted(
        self, snap: ConfigSnapshot, budget: Budget, spend: float, now: dt.datetime
    ) -> None:
        """Log ``guardrail.budget_exhausted`` once per configuration, period and process."""
        start = period_start(budget.period, now.astimezone(dt.UTC).date())
        period_key = f"{start.isoformat() if start else 'total'}:{budget.amount}"
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
                    "amount": budget.amount,
                    "period": budget.period,
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


def _result(
    decision_id: uuid.UUID | None,
    snap: ConfigSnapshot,
    request: DecisionRequest,
    variant: Variant,
    eligible: list[str],
    choice: _Choice,
) -> Decision:
    """The decision the policy's choice makes (logged, or a dry run's with no id)."""
    pairs = choice.channels
    return Decision(
        decision_id=decision_id,
        action=snap.action(eligible[choice.index]),
        probability=choice.probabilities[choice.index],
        variant=variant,
        policy=choice.policy,
        model_version=choice.model_version,
        eligible=tuple(eligible),
        probabilities=tuple(choice.probabilities),
        channel=request.channel if pairs is None else pairs[choice.index],
        eligible_channels=None if pairs is None else tuple(pairs),
    )


def _check_decidable(snap: ConfigSnapshot, request: DecisionRequest) -> None:
    """Refuse a stopped configuration, then a request that does not fit its settings.

    :raises Conflict: the configuration is PAUSED or INACTIVE
    :raises InvalidInput: unknown channel or candidates
    """
    if snap.status != ConfigStatus.ACTIVE:
        raise Conflict(f"Configuration {snap.id} is {snap.status}: no decisions are made.")
    errors = {}
    channels = snap.settings.channels
    unknown = [c for c in _requested_channels(snap, request) if c not in channels]
    if unknown:
        listed = ", ".join(channels)
        errors["channel"] = [
            f"Not a channel of this configuration: use one of {listed}, or {AUTO}."
        ]
    if request.candidates is not None:
        actions = snap.settings.actions_by_id
        unknown = [c for c in request.candidates if c not in actions]
        if unknown:
            errors["candidates"] = [f"Unknown action ids: {', '.join(unknown[:10])}."]
    if errors:
        raise InvalidInput("Invalid decision request.", errors)


def _eligibility(
    session: Session, snap: ConfigSnapshot, request: DecisionRequest, now: dt.datetime
) -> list[str]:
    """The campaign window, quiet hours, channel exclusions, consent, then the actions
    this user may see here (channels, candidates, action rules).

    :returns: the eligible action ids, in settings (or candidates) order
    :raises _Refused: with the first check that fails
    """
    settings = snap.settings
    if not eligibility.campaign_running(settings.campaign, now):
        raise _Refused(NoDecisionReason.CAMPAIGN_NOT_RUNNING)
    if eligibility.in_quiet_hours(settings.schedule, request.context, now):
        raise _Refused(NoDecisionReason.QUIET_HOURS)
    exclusions = settings.guardrails.channel_exclusions
    if exclusions and eligibility.excluded(exclusions, request.channel, request.context):
        raise _Refused(NoDecisionReason.EXCLUDED)
    # An unsubscribe, bounce or complaint stops the channel for this user (one lookup).
    if not consent.allowed(session, snap.workspace_id, request.channel, request.user_id):
        raise _Refused(NoDecisionReason.NO_CONSENT)
    eligible = eligibility.eligible_actions(
        settings.actions_by_id, request.channel, request.context, request.candidates
    )
    if not eligible:
        raise _Refused(NoDecisionReason.NO_ELIGIBLE_ACTION)
    return eligible


def _assignment(
    snap: ConfigSnapshot,
    request: DecisionRequest,
    eligible: list[str],
    usage: Usage | None,
    channels: list[str] | None = None,
) -> tuple[Variant, list[str], list[str] | None]:
    """Treatment or the holdout; treatment then loses the actions over their share (on
    every channel, when the engine chooses the channel).

    :raises _Refused: ``max_action_share`` (treatment only)
    """
    settings = snap.settings
    variant = assignment.variant(snap.id, request.user_id, settings.holdout.percent)
    max_share = settings.guardrails.max_action_share
    if variant == Variant.TREATMENT and max_share is not None:
        # The holdout is the control: its baseline keeps every action.
        capped = over_share(usage.counts, max_share)
        kept = [i for i, a in enumerate(eligible) if a not in capped]
        if not kept:
            raise _Refused(NoDecisionReason.MAX_ACTION_SHARE)
        eligible = [eligible[i] for i in kept]
        channels = None if channels is None else [channels[i] for i in kept]
    return variant, eligible, channels


def _requested_channels(snap: ConfigSnapshot, request: DecisionRequest) -> tuple[str, ...]:
    """The channels a request may be decided on: its channel, or with :data:`AUTO` the
    ones it allows (all of the configuration's when it names none)."""
    if request.channel != AUTO:
        return (request.channel,)
    return request.channels or tuple(snap.settings.channels)


def baseline_probabilities(holdout: Holdout, eligible: list[str]) -> list[float]:
    """The holdout baseline's distribution over the eligible actions (also evaluated offline).

    :param holdout: the settings' holdout (its ``baseline_action``, or None for random)
    :param eligible: the eligible action ids, at least one
    :returns: one probability per eligible action, in their order
    """
    fixed = holdout.baseline_action
    if fixed is not None and fixed in eligible:
        # On several channels the fixed action may be eligible on more than one: it goes
        # out on one of them at random.
        share = 1.0 / eligible.count(fixed)
        return [share if a == fixed else 0.0 for a in eligible]
    # Random baseline (or the fixed action is not eligible here): uniform, so its
    # propensities are known and its decisions are good training data.
    return [1.0 / len(eligible)] * len(eligible)


def _over_frequency_cap(
    session: Session, snap: ConfigSnapshot, request: DecisionRequest, now: dt.datetime
) -> bool:
    for cap in snap.settings.guardrails.frequency_caps:
        if cap.channel != request.channel:
            continue
        since = now - dt.timedelta(hours=cap.per_hours)
        # A batch read its users' recent decisions once (decision_log.prefetch_recent).
        count = decision_log.stored_count(session, snap.id, request.user_id, request.channel, since)
        if count is None:
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
        # A batch's decisions not yet written count too (hpe_core.decide.decision_log).
        count += decision_log.pending_count(
            session, snap.id, request.user_id, request.channel, since
        )
        if count >= cap.max:
            return True
    return False


def parse_request(body: Mapping) -> DecisionRequest:
    """Build a request from the API body (already shape-checked by the web schema).

    :raises InvalidInput: a bad user_id, or a context over its limits
        (:mod:`hpe_core.decide.context_limits`)
    """
    user_id = body["user_id"]
    if not user_id or len(user_id) > MAX_USER_ID_LENGTH:
        raise InvalidInput("Invalid user_id.", {"user_id": [f"1-{MAX_USER_ID_LENGTH} characters."]})
    channel = body["channel"]
    channels: tuple[str, ...] = ()
    if isinstance(channel, list | tuple):
        # A list of allowed channels: the engine chooses among them.
        channel, channels = AUTO, tuple(dict.fromkeys(channel))
    context = body.get("context") or {}
    check_context(context)
    return DecisionRequest(
        user_id=user_id,
        channel=channel,
        context=context,
        candidates=body.get("candidates"),
        channels=channels,
    )
