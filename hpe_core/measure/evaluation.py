"""Off-policy evaluation: what the model, the baseline and the logged policy would earn.

Every logged decision with a known propensity and a known reward (live or imported) is
a sample of the policy that made it. Reweighting those samples estimates how another
policy would have done on the same users without serving it: "would the current model
beat the baseline if it served everyone?" The estimators are in
:mod:`hpe_core.measure.estimators`; this module reads the decision log, builds each target
policy's action distributions (the newest model through VW, the configured baseline)
and assembles the ``GET /{id}/evaluation`` answer (:class:`hpe_core.results.Evaluation`).
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterable, Sequence

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from hpe_core.decide.decisions import baseline_probabilities
from hpe_core.decide.features import ActionCatalog, decision_features, pair_features
from hpe_core.decide.policy import store
from hpe_core.decide.policy.exploration import vw_arguments
from hpe_core.decide.policy.learner import Learner
from hpe_core.errors import InvalidInput
from hpe_core.measure.estimators import LoggedDecision, RewardModel, estimate
from hpe_core.measure.metrics import MAX_DAYS, resolve_range
from hpe_core.results import DateRange, Evaluation
from hpe_core.store.days import created_between
from hpe_core.store.models import Config, Decision
from hpe_core.store.vocabulary import DecisionSource, Policy
from hpe_core.tenancy import configs
from hpe_core.tenancy.configs import settings_of
from hpe_core.tenancy.settings_types import Settings
from hpe_core.tenancy.workspaces import Principal

#: Target policies, in response order. ``model_greedy`` always serves the model's top
#: action (what the model would do with exploration switched off).
POLICIES = (Policy.MODEL, "model_greedy", Policy.BASELINE, Policy.LOGGED)
DEFAULT_POLICIES = (Policy.MODEL, Policy.BASELINE, Policy.LOGGED)
DEFAULT_LIMIT = 20_000
MAX_LIMIT = 200_000
_MODEL_POLICIES = {Policy.MODEL, "model_greedy"}


def read(
    session: Session,
    principal: Principal,
    config_id: uuid.UUID,
    *,
    date_from: dt.date | None = None,
    date_to: dt.date | None = None,
    policies: Iterable[str] | None = None,
    limit: int = DEFAULT_LIMIT,
    today: dt.date | None = None,
) -> Evaluation:
    """The evaluation answer for one configuration (the API's entry point).

    :param policies: names, each possibly comma-separated (``["model,baseline"]``);
        None for :data:`DEFAULT_POLICIES`
    :param limit: evaluate at most this many of the most recent decisions
    :raises NotFound: unknown or another workspace's configuration
    :raises InvalidInput: reversed or over-long range, unknown policy, limit out of range
    """
    config = configs.get(session, principal, config_id)
    date_from, date_to = resolve_range(date_from, date_to, today or dt.datetime.now(dt.UTC).date())
    return evaluate(
        session,
        config,
        date_from=date_from,
        date_to=date_to,
        policies=parse_policies(policies),
        limit=limit,
    )


def parse_policies(values: Iterable[str] | None) -> tuple[str, ...]:
    """Split comma-separated names, drop repeats, keep the order of :data:`POLICIES`.

    :raises InvalidInput: for an unknown name, or when no name is given
    """
    if values is None:
        return DEFAULT_POLICIES
    names = {name.strip() for value in values for name in value.split(",")}
    names.discard("")
    unknown = sorted(names - set(POLICIES))
    allowed = ", ".join(POLICIES)
    if unknown:
        shown = ", ".join(repr(name[:40]) for name in unknown[:5])
        raise InvalidInput(
            f"Unknown policy {shown}: use {allowed}.",
            {"policies": [f"Unknown policy {shown}; allowed: {allowed}."]},
        )
    if not names:
        raise InvalidInput(
            "Name at least one policy.", {"policies": [f"Give one or more of: {allowed}."]}
        )
    return tuple(name for name in POLICIES if name in names)


def evaluate(
    session: Session,
    config: Config,
    *,
    date_from: dt.date,
    date_to: dt.date,
    policies: Sequence[str] = DEFAULT_POLICIES,
    limit: int = DEFAULT_LIMIT,
) -> Evaluation:
    """Estimate each target policy's mean reward per decision from the decision log.

    Uses the configuration's most recent ``limit`` decisions created in
    ``date_from``..``date_to`` (inclusive UTC dates) that have a propensity > 0 and a
    known reward (learned, or an import's given reward). A decision whose logged action
    has since been removed from the settings is skipped (counted in ``skipped``); the
    other removed actions are dropped from its eligible set.

    :param policies: names from :data:`POLICIES`
    :returns: the estimates of the policies asked for (in the order of
        :data:`POLICIES`), the reward model, the decisions used and skipped;
        ``model_version`` is the model the ``model`` policies were scored with (None: not
        trained yet, or trained with other exploration settings, so the untrained model
        is what would serve); ``available`` and ``hint``: see :func:`_where_to_look`
    :raises InvalidInput: unknown policy or ``limit`` outside 1..:data:`MAX_LIMIT`
    """
    _check_arguments(policies, limit)
    settings = settings_of(config)
    catalog = ActionCatalog(action.document for action in settings.actions)
    raw = _logged_rows(session, config.id, date_from, date_to, limit)
    rows, shared_lines = _samples(raw, catalog)
    reward_model = RewardModel(rows)
    model_version, distributions = _distributions(
        session, config, settings, catalog, rows, shared_lines, policies
    )
    available, hint = _where_to_look(session, config.id, date_from, date_to, raw, rows)
    return Evaluation(
        config_id=config.id,
        date_from=date_from,
        date_to=date_to,
        model_version=model_version,
        n=len(rows),
        skipped=len(raw) - len(rows),
        available=available,
        hint=hint,
        reward_model=reward_model.describe(),
        policies={
            name: estimate(rows, distributions[name], reward_model)
            for name in POLICIES
            if name in policies
        },
    )


def _check_arguments(policies: Sequence[str], limit: int) -> None:
    unknown = [name for name in policies if name not in POLICIES]
    if unknown:
        raise InvalidInput(
            f"Unknown policy {unknown[0]!r}.", {"policies": [f"Allowed: {', '.join(POLICIES)}."]}
        )
    if not 1 <= limit <= MAX_LIMIT:
        raise InvalidInput(
            f"limit must be between 1 and {MAX_LIMIT}.", {"limit": [f"1 to {MAX_LIMIT}."]}
        )


def _samples(raw: Sequence, catalog: ActionCatalog) -> tuple[list[LoggedDecision], list[str]]:
    """The logged decisions whose action still exists, and each one's shared feature line."""
    rows, shared_lines = [], []
    for decision in raw:
        if decision.action_id not in catalog:
            continue
        if decision.eligible_channels is not None:
            # The engine chose the channel: the entries are (action, channel) pairs.
            pairs = [
                (a, c)
                for a, c in zip(decision.eligible, decision.eligible_channels, strict=True)
                if a in catalog
            ]
            rows.append(
                LoggedDecision(
                    channel=decision.channel,
                    eligible=tuple(a for a, _c in pairs),
                    action_id=decision.action_id,
                    propensity=float(decision.probability),
                    reward=float(decision.reward),
                    channels=tuple(c for _a, c in pairs),
                )
            )
            shared_lines.append(decision.features or pair_features(decision.context or {}))
            continue
        rows.append(
            LoggedDecision(
                channel=decision.channel,
                eligible=tuple(a for a in decision.eligible if a in catalog),
                action_id=decision.action_id,
                propensity=float(decision.probability),
                reward=float(decision.reward),
            )
        )
        shared_lines.append(
            decision.features or decision_features(decision.channel, decision.context or {})
        )
    return rows, shared_lines


def _distributions(
    session: Session,
    config: Config,
    settings: Settings,
    catalog: ActionCatalog,
    rows: Sequence[LoggedDecision],
    shared_lines: Sequence[str],
    policies: Sequence[str],
) -> tuple[int | None, dict[str, list]]:
    """``(model_version, {policy: its distribution per row})``; the logging policy's are
    None (its own propensities); the model is scored only when a model policy is asked."""
    distributions: dict[str, list] = {}
    model_version = None
    if _MODEL_POLICIES & set(policies):
        model_version, scored = _model_distributions(
            session, config, settings, catalog, rows, shared_lines
        )
        distributions[Policy.MODEL] = scored
        distributions["model_greedy"] = [_greedy(pmf) for pmf in scored]
    distributions[Policy.BASELINE] = [
        baseline_probabilities(settings.holdout, list(r.eligible)) for r in rows
    ]
    distributions[Policy.LOGGED] = [None] * len(rows)
    return model_version, distributions


#: The reward a decision is evaluated with: learned decisions carry their reward; imports
#: not yet learned their given one.
_REWARD = func.coalesce(Decision.reward, Decision.given_reward)


def _evaluable(config_id: uuid.UUID) -> list:
    """SQL conditions: a decision of this configuration with a propensity and a reward,
    not deferred (a deferred decision may hold a reward before it is activated)."""
    return [
        Decision.config_id == config_id,
        Decision.probability > 0,
        _REWARD.is_not(None),
        Decision.source != DecisionSource.DEFERRED,
    ]


def _logged_rows(
    session: Session, config_id: uuid.UUID, date_from: dt.date, date_to: dt.date, limit: int
) -> list:
    # Plain rows, not ORM objects: up to MAX_LIMIT decisions, of which a few columns are
    # needed.
    conditions = [*_evaluable(config_id), created_between(date_from, date_to)]
    return session.execute(
        select(
            Decision.channel,
            Decision.features,
            # The context only where no feature line was kept (rows from before it was).
            case((Decision.features.is_(None), Decision.context), else_=None).label("context"),
            Decision.eligible,
            Decision.action_id,
            Decision.probability,
            _REWARD.label("reward"),
            Decision.eligible_channels,
        )
        .where(*conditions)
        .order_by(Decision.created_at.desc(), Decision.id.desc())
        .limit(limit)
    ).all()


def sample_start(
    session: Session, config_id: uuid.UUID, date_from: dt.date, date_to: dt.date, limit: int
) -> dt.datetime | None:
    """When the oldest of the decisions :func:`evaluate` reads was made, if the range has
    at least ``limit`` evaluable ones (it reads the ``limit`` most recent); else None."""
    return session.scalar(
        select(Decision.created_at)
        .where(*_evaluable(config_id), created_between(date_from, date_to))
        .order_by(Decision.created_at.desc(), Decision.id.desc())
        .offset(limit - 1)
        .limit(1)
    )


def _where_to_look(
    session: Session,
    config_id: uuid.UUID,
    date_from: dt.date,
    date_to: dt.date,
    raw: Sequence,
    rows: Sequence[LoggedDecision],
) -> tuple[DateRange | None, str | None]:
    """``(available, hint)``: when nothing could be evaluated, say why and where to look.

    ``available`` gives the UTC dates of the configuration's first and
    last evaluable decisions, given when the range holds none; None otherwise (the range
    holds some, or the configuration has none at all). ``hint`` is a sentence for a
    person whenever ``n`` is 0, None when it is not.
    """
    if rows:
        return None, None
    shown = f"between {date_from} and {date_to}"
    if raw:
        return None, (
            f"Every evaluable decision {shown} ({len(raw)} read) chose an action that is "
            "no longer in the settings, so none could be evaluated."
        )
    # Only looked up when the range came back empty: the newest decisions of a busy
    # configuration are unlearned (no reward), and max() walks the created_at index back
    # through all of them before it finds one, too slow for every evaluation.
    first, last = session.execute(
        select(func.min(Decision.created_at), func.max(Decision.created_at)).where(
            *_evaluable(config_id)
        )
    ).one()
    if first is None:
        return None, (
            "This configuration has no evaluable decisions yet: a decision counts once its "
            "reward is known (its reward window closed and it was learned, or its import "
            "gave a reward) and its propensity is above 0."
        )
    available = DateRange(date_from=first.date(), date_to=last.date())
    start, what = available.date_from, "them."
    if (available.date_to - start).days >= MAX_DAYS:
        # A range covers at most MAX_DAYS: suggest the most recent ones of a longer history.
        start = available.date_to - dt.timedelta(days=MAX_DAYS - 1)
        what = f"the most recent {MAX_DAYS} days of them."
    return available, (
        f"No evaluable decisions {shown}; this configuration has some from "
        f"{available.date_from} to {available.date_to}: pass "
        f"from={start}&to={available.date_to} to evaluate {what}"
    )


def _model_distributions(
    session: Session,
    config: Config,
    settings: Settings,
    catalog: ActionCatalog,
    rows: Sequence[LoggedDecision],
    shared_lines: Sequence[str],
) -> tuple[int | None, list[list[float]]]:
    """The newest model's exploration distribution for every row, as serving would give it.

    Like the decision engine, a model trained with other exploration settings than the
    current ones is not served: the untrained model with the current settings is.
    """
    args = vw_arguments(settings.document["exploration"])
    newest = store.latest(session, config.id)
    learner = store.load_learner(newest, args)
    version = newest.version if learner is not None else None
    learner = learner or Learner(args)
    with learner:
        return version, [
            learner.predict(line, _lines(catalog, row))
            for row, line in zip(rows, shared_lines, strict=True)
        ]


def _lines(catalog: ActionCatalog, row: LoggedDecision) -> list[str]:
    """The action lines a logged decision was scored with (pairs: with their channel)."""
    if row.channels is None:
        return catalog.lines(row.eligible)
    return [catalog.pair_line(a, c) for a, c in zip(row.eligible, row.channels, strict=True)]


def _greedy(pmf: Sequence[float]) -> list[float]:
    # The decision engine's model_action_id: the first action with the top probability.
    top = max(range(len(pmf)), key=pmf.__getitem__)
    return [1.0 if index == top else 0.0 for index in range(len(pmf))]
