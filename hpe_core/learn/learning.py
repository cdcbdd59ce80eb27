"""Join closed decisions with their outcomes and learn them: one learner per configuration.

A learn run is one database transaction: read a batch of closed, unlearned decisions
and their outcomes, learn them on the newest model, save the next model version and mark
the decisions learned. If the process dies before the commit nothing changed (the next
run redoes the batch); two runs racing on one configuration cannot both commit (the
version number is unique, and on PostgreSQL an advisory lock keeps the second one out).
So every decision is learned exactly once.

The advisory lock lives as long as the learn transaction's server session, so it cannot
outlive its holder: a killed worker's session ends with its socket (no connection crosses
a fork: :func:`hpe_core.store.db.forget_inherited_connections`), and as a backstop the
session is ended by PostgreSQL once it sits idle inside the transaction for
:data:`LEARN_IDLE_TIMEOUT` (a learner that hangs, a machine that vanished). A learn run
that finds its configuration busy says so in the log, naming the holder.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import logging
import threading
import uuid
from collections import defaultdict
from collections.abc import Mapping
from typing import NamedTuple

from sqlalchemy import Uuid, any_, bindparam, case, func, select, text, update
from sqlalchemy.dialects import postgresql
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from hpe_core import collector
from hpe_core.decide.features import ActionCatalog
from hpe_core.decide.policy import store
from hpe_core.decide.policy.exploration import vw_arguments
from hpe_core.decide.policy.learner import Learner
from hpe_core.decide.policy.trials import LearnerState
from hpe_core.learn import adaptation, rewards
from hpe_core.store import db, stale_days
from hpe_core.store.models import Attribution, Config, Decision, ModelVersion, Outcome, utcnow
from hpe_core.tenancy import activities, configs
from hpe_core.tenancy.settings_types import NewActions, Reward, Settings

log = logging.getLogger(__name__)

BATCH_SIZE = 5000
MODEL_UPDATED = "model.updated"
#: PostgreSQL ends a learn session that sits idle inside its transaction this long
#: (``idle_in_transaction_session_timeout``, set for learn transactions only), which
#: releases its advisory lock. Between two statements a learn run only learns one batch
#: in VW (well under a second for 5,000 examples), so a minute means its holder is gone.
LEARN_IDLE_TIMEOUT = dt.timedelta(seconds=60)


@dataclasses.dataclass
class LearnReport:
    """What a learn run did.

    :param learned: decisions learned (examples given to VW)
    :param skipped: decisions closed without being learned (their action or propensity
        cannot be replayed: an action removed from the settings, a probability of 0)
    :param version: the model version saved, None when nothing was learned
    :param busy: another learner holds this configuration; it does the work
    """

    config_id: uuid.UUID
    learned: int = 0
    skipped: int = 0
    version: int | None = None
    busy: bool = False


class _Closed(NamedTuple):
    """A closed decision, as much of it as learning reads."""

    id: uuid.UUID
    channel: str
    features: str | None
    context: dict | None
    eligible: list[str]
    action_id: str
    probability: float
    given_reward: float | None
    eligible_channels: list[str] | None
    policy: str
    created_at: dt.datetime


class _Mark(NamedTuple):
    """What learning writes back on a decision."""

    decision_id: uuid.UUID
    reward: float
    engaged: bool


@dataclasses.dataclass(frozen=True)
class _Examples:
    """A batch turned into VW examples, and the marks every decision of it gets.

    :param examples: ``(context line, action lines, chosen index, reward, probability)``
    :param skipped: decisions marked but not learned
    :param chosen: the action id of each example
    """

    examples: list[tuple]
    marks: list[_Mark]
    skipped: int
    chosen: list[str] = dataclasses.field(default_factory=list)


def configs_with_closed_windows(
    session: Session, now: dt.datetime | None = None
) -> list[uuid.UUID]:
    """Configurations that have decisions waiting to be learned (for the sweeper)."""
    now = now or utcnow()
    return list(
        session.scalars(
            select(Decision.config_id)
            .where(Decision.learned_at.is_(None), Decision.window_closes_at <= now)
            .group_by(Decision.config_id)
        )
    )


def learn_closed(
    session: Session,
    config_id: uuid.UUID,
    *,
    now: dt.datetime | None = None,
    batch_size: int = BATCH_SIZE,
) -> LearnReport:
    """Learn one batch of this configuration's closed decisions and commit.

    :returns: what was learned; ``busy`` if another learner holds this configuration
    """
    now = now or utcnow()
    report = LearnReport(config_id)
    if not _try_lock(session, config_id):
        _log_busy(session, config_id)
        session.rollback()
        report.busy = True
        return report
    config = session.get(Config, config_id)
    batch = _closed_batch(session, config_id, now, batch_size) if config is not None else []
    if not batch:
        session.rollback()
        return report
    settings = configs.settings_of(config)
    catalog = ActionCatalog(settings.actions)
    outcomes = _outcomes_by_decision(session, [decision.id for decision in batch])
    batch_examples = _examples(batch, outcomes, settings.reward, catalog)
    report.skipped = batch_examples.skipped
    args = vw_arguments(settings.exploration)
    previous = store.latest(session, config_id)
    served = _served(batch, batch_examples.marks)
    keeping = _KeepingUp.start(session, config, settings, catalog, previous, args, served, now)
    learner = keeping.learner or _warm_learners.take(config_id, previous, args)
    try:
        learned, version = _learn_and_save(
            session,
            config,
            learner,
            keeping,
            batch_examples,
            args=args,
            previous=previous,
            new_actions=settings.learning.new_actions,
            now=now,
        )
        session.commit()
    except IntegrityError:
        # Another learner saved this version number first: it learned this batch, ours is
        # dropped. (The backstop where no advisory lock exists: SQLite with several
        # `hpe serve` workers each sweeping.)
        session.rollback()
        learner.close()
        report.busy = True
        return report
    except BaseException:
        learner.close()  # its state includes a batch that was not committed
        raise
    _warm_learners.keep(config_id, version.version, version.checksum, learner)
    report.learned, report.version = learned, version.version
    return report


def _served(batch: list[_Closed], marks: list[_Mark]) -> list[adaptation.Served]:
    """The batch's decisions with their rewards, in order, as the drift detector reads them."""
    return [
        adaptation.Served(decision.policy, mark.reward, decision.created_at)
        for decision, mark in zip(batch, marks, strict=True)
    ]


def _learn_and_save(
    session: Session,
    config: Config,
    learner: Learner,
    keeping: _KeepingUp,
    batch_examples: _Examples,
    *,
    args: str,
    previous: ModelVersion | None,
    new_actions: NewActions,
    now: dt.datetime,
) -> tuple[int, ModelVersion]:
    """Learn the batch's examples on ``learner``, save the next model version and mark the
    batch learned (the caller commits).

    :returns: the examples learned, and the version saved
    :raises IntegrityError: another learner saved this version number first
    """
    learned = learner.learn_batch(batch_examples.examples) if batch_examples.examples else 0
    keeping.state.note_learned(batch_examples.chosen, new_actions)
    version = store.save(
        session,
        config.id,
        args=args,
        model=learner.save(),
        examples=learned,
        previous=previous,
        source=keeping.source,
        state=keeping.state.document(),
    )
    _record_learned(session, config, batch_examples, version.version, learned, now)
    keeping.record(session, config, version.version, now)
    return learned, version


def retrain_for_settings(
    session: Session, config_id: uuid.UUID, *, now: dt.datetime | None = None
) -> LearnReport:
    """After the exploration settings changed: save a model with the new settings trained
    on the recent log now, instead of at the next learn run (nothing is done when the
    newest version already has them, or another learner holds the configuration).
    Commits.

    :returns: what was done; ``version`` is None when nothing was saved
    """
    now = now or utcnow()
    report = LearnReport(config_id)
    if not _try_lock(session, config_id):
        session.rollback()
        report.busy = True
        return report
    config = session.get(Config, config_id)
    if config is None:
        session.rollback()
        return report
    settings = configs.settings_of(config)
    args = vw_arguments(settings.exploration)
    previous = store.latest(session, config_id)
    catalog = ActionCatalog(settings.actions)
    keeping = _KeepingUp.start(session, config, settings, catalog, previous, args, [], now)
    if keeping.learner is None:
        session.rollback()
        return report
    learner = keeping.learner
    try:
        version = store.save(
            session,
            config_id,
            args=args,
            model=learner.save(),
            examples=0,
            previous=previous,
            source=keeping.source,
            state=keeping.state.document(),
        )
        keeping.record(session, config, version.version, now)
        store.prune(session, config_id)
        session.commit()
    except IntegrityError:
        session.rollback()
        learner.close()
        report.busy = True
        return report
    except BaseException:
        learner.close()
        raise
    _warm_learners.keep(config_id, version.version, version.checksum, learner)
    report.version = version.version
    return report


def _closed_batch(
    session: Session, config_id: uuid.UUID, now: dt.datetime, batch_size: int
) -> list[_Closed]:
    """The oldest closed, unlearned decisions of the configuration.

    Plain rows, not ORM objects: a batch is thousands of decisions, and the learner needs
    only these columns.
    """
    rows = session.execute(
        select(
            Decision.id,
            Decision.channel,
            Decision.features,
            # The context only where no feature line was kept (rows from before it was):
            # decoding thousands of JSON contexts is most of a batch's reading time.
            case((Decision.features.is_(None), Decision.context), else_=None).label("context"),
            Decision.eligible,
            Decision.action_id,
            Decision.probability,
            Decision.given_reward,
            Decision.eligible_channels,
            Decision.policy,
            Decision.created_at,
        )
        .where(
            Decision.config_id == config_id,
            Decision.learned_at.is_(None),
            Decision.window_closes_at <= now,
        )
        .order_by(Decision.created_at, Decision.id)
        .limit(batch_size)
    )
    return [_Closed(*row) for row in rows]


def _examples(
    batch: list[_Closed],
    events: Mapping[uuid.UUID, list[rewards.Event]],
    reward_settings: Reward,
    catalog: ActionCatalog,
) -> _Examples:
    """Each decision's reward, and the VW example of those that can be replayed."""
    examples, marks, skipped, chosen = [], [], 0, []
    for decision in batch:
        mark = _mark(decision, events.get(decision.id, []), reward_settings)
        marks.append(mark)
        # Actions removed from the settings since the decision cannot be featurized.
        example = adaptation.replay_example(
            catalog,
            channel=decision.channel,
            features=decision.features,
            context=decision.context,
            eligible=decision.eligible,
            eligible_channels=decision.eligible_channels,
            action_id=decision.action_id,
            probability=decision.probability,
            reward=mark.reward,
        )
        if example is None:
            skipped += 1
            continue
        examples.append(example)
        chosen.append(decision.action_id)
    return _Examples(examples, marks, skipped, chosen)


def _mark(decision: _Closed, events: list[rewards.Event], reward_settings: Reward) -> _Mark:
    """A decision's reward: the one it was imported with, else its outcomes' (none: the
    configured default, not engaged)."""
    if decision.given_reward is not None:
        return _Mark(decision.id, decision.given_reward, decision.given_reward > 0)
    if events:
        return _Mark(
            decision.id,
            rewards.combine(reward_settings, events),
            rewards.is_engaged(reward_settings, events),
        )
    return _Mark(decision.id, reward_settings.default, False)


def _record_learned(
    session: Session,
    config: Config,
    batch_examples: _Examples,
    version: int,
    learned: int,
    now: dt.datetime,
) -> None:
    """Mark the batch learned, its days stale, log the new version and prune old ones
    (the caller commits)."""
    marks = batch_examples.marks
    _mark_learned(session, marks, now)
    # Rewards changed on these decisions' days: a rolled-up day must be recomputed.
    stale_days.mark_stale_decisions(
        session, config.id, [mark.decision_id for mark in marks], now=now
    )
    activities.record(
        session,
        workspace_id=config.workspace_id,
        config_id=config.id,
        type=MODEL_UPDATED,
        actor="engine",
        data={"version": version, "examples": learned, "skipped": batch_examples.skipped},
    )
    store.prune(session, config.id)


def learn_all_closed(
    session: Session, config_id: uuid.UUID, *, batch_size: int = BATCH_SIZE, **kwargs
) -> LearnReport:
    """Learn batches until the backlog is gone (or another learner holds the configuration).

    A batch smaller than ``batch_size`` emptied the backlog: windows closing meanwhile
    wait for the next sweep, so a busy configuration gets one version per sweep rather
    than one per trickling decision.
    """
    total = LearnReport(config_id)
    while True:
        with collector.paused():  # a batch's rows and examples hold no cycles
            report = learn_closed(session, config_id, batch_size=batch_size, **kwargs)
        total.learned += report.learned
        total.skipped += report.skipped
        total.version = report.version or total.version
        total.busy = report.busy
        if report.busy or report.learned + report.skipped < batch_size:
            return total


@dataclasses.dataclass
class _KeepingUp:
    """What a learn run does to keep the model current (:mod:`hpe_core.learn.adaptation`):
    the state it carries to the next version, and a retrained learner when the exploration
    settings changed or the drift detector found the reward dropped.

    :param learner: the retrained learner, None to extend the newest model as usual
    :param source: the new version's ``source``
    """

    state: LearnerState
    learner: Learner | None = None
    source: str = "learn"
    activity: tuple[str, dict] | None = None

    @classmethod
    def start(
        cls,
        session: Session,
        config: Config,
        settings: Settings,
        catalog: ActionCatalog,
        previous: ModelVersion | None,
        args: str,
        served: list[adaptation.Served],
        now: dt.datetime,
    ) -> _KeepingUp:
        """The state to carry on, and the retrained learner if the model must start over.

        :param served: the batch's decisions with their rewards, in order
        """
        state = LearnerState.starting(previous, settings)
        state.forget_removed(settings.action_ids)
        state.note_actions(settings.action_ids)
        limit = settings.learning.retrain_max_decisions
        if previous is not None and previous.vw_args != args:
            # The exploration settings changed: a VW model cannot take new arguments, so
            # the new one learns the recent log instead of starting empty.
            learner, examples = adaptation.retrain(
                session, config.id, args, catalog, since=None, limit=limit
            )
            adaptation.reset_drift(state)
            data = {"reason": "settings", "from_args": previous.vw_args, "examples": examples}
            activity = (adaptation.MODEL_RETRAINED, data)
            return cls(state, learner, adaptation.RETRAIN_SOURCE, activity)
        alarm = adaptation.watch(state, settings.learning.drift, served)
        if alarm is None or alarm.change_key is None:
            return cls(state)
        since = dt.datetime.fromisoformat(alarm.change_key)
        learner, examples = adaptation.retrain(
            session, config.id, args, catalog, since=since, limit=limit
        )
        adaptation.reset_drift(state)
        data = adaptation.drift_data(alarm, since, now, examples)
        activity = (adaptation.MODEL_DRIFT_DETECTED, data)
        return cls(state, learner, adaptation.RETRAIN_SOURCE, activity)

    def record(self, session: Session, config: Config, version: int, now: dt.datetime) -> None:
        """Log the retrain, if there was one (the caller commits)."""
        if self.activity is None:
            return
        type_, data = self.activity
        activities.record(
            session,
            workspace_id=config.workspace_id,
            config_id=config.id,
            type=type_,
            actor="engine",
            data={"version": version, **data},
        )


class _WarmLearners:
    """The learner each configuration last committed, kept in this worker's memory.

    Reloading a model from its bytes for every run costs more than learning a small
    batch. A kept learner is reused only while its version is still the newest (no other
    worker or rollback wrote one since); otherwise the newest version is loaded.
    """

    class _Kept(NamedTuple):
        version: int
        checksum: str
        learner: Learner

    def __init__(self):
        self._learners: dict[uuid.UUID, _WarmLearners._Kept] = {}
        self._lock = threading.Lock()

    def take(self, config_id: uuid.UUID, newest: ModelVersion | None, args: str) -> Learner:
        """The learner to extend: the kept one while ``newest`` is still its version (its
        number and checksum: no blob is read), else one loaded from ``newest``'s model,
        else a fresh one."""
        with self._lock:
            kept = self._learners.pop(config_id, None)
        if kept is not None:
            if (
                newest is not None
                and newest.version == kept.version
                and newest.checksum == kept.checksum
                and kept.learner.args == args
            ):
                return kept.learner
            kept.learner.close()
        # First run, or exploration settings changed: start afresh.
        return store.load_learner(newest, args) or Learner(args)

    def keep(self, config_id: uuid.UUID, version: int, checksum: str, learner: Learner) -> None:
        with self._lock:
            old = self._learners.get(config_id)
            self._learners[config_id] = self._Kept(version, checksum, learner)
        if old is not None:
            old.learner.close()


_warm_learners = _WarmLearners()


def _mark_learned(session: Session, marks: list[_Mark], now: dt.datetime) -> None:
    """Set learned_at, reward and engaged on a batch of decisions in as few round trips
    as the backend allows (this update is most of a learn run's database time)."""
    if session.get_bind().dialect.name == "postgresql":
        # One statement for the whole batch: UPDATE ... FROM unnest(arrays).
        ids, batch_rewards, engaged = (list(column) for column in zip(*marks, strict=True))
        session.execute(
            text(
                f'UPDATE "{Decision.__tablename__}" AS d '
                "SET learned_at = :now, reward = v.reward, engaged = v.engaged "
                "FROM unnest(CAST(:ids AS uuid[]), CAST(:rewards AS float8[]), "
                "CAST(:engaged AS boolean[])) AS v(id, reward, engaged) WHERE d.id = v.id"
            ),
            {"now": now, "ids": ids, "rewards": batch_rewards, "engaged": engaged},
        )
        return
    table = Decision.__table__
    session.execute(
        update(table)
        .where(table.c.id == bindparam("decision_id"))
        .values(learned_at=bindparam("now"), reward=bindparam("r"), engaged=bindparam("e")),
        [
            {"decision_id": mark.decision_id, "now": now, "r": mark.reward, "e": mark.engaged}
            for mark in marks
        ],
    )


def _outcomes_by_decision(session: Session, ids: list[uuid.UUID]) -> dict:
    """Decision id -> its on-time outcomes as ``(type, value, credit)`` for
    :func:`rewards.combine`: outcomes tied to it (credit 1.0, not ``late``) and the
    user-level outcomes attribution credited to it that occurred before its window closed.

    Attribution written after a decision was learned never changes its reward (learning
    happens once); it still counts in metrics.
    """
    found: dict[uuid.UUID, list[tuple[str, float | None, float]]] = defaultdict(list)
    if session.get_bind().dialect.name == "postgresql":
        # The whole batch as one array parameter: two short statements that PostgreSQL
        # prepares once, instead of IN lists of a thousand parameters whose text the
        # driver re-parses on every execution (a fifth of a learn run's time).
        chunks = [ids]
        in_batch = [_ANY_DECISION_ID, _ANY_ATTRIBUTED_ID]
    else:
        chunks = [ids[start : start + 1000] for start in range(0, len(ids), 1000)]
        in_batch = None
    for chunk in chunks:
        outcome_filter, credit_filter = in_batch or (
            Outcome.decision_id.in_(chunk),
            Attribution.decision_id.in_(chunk),
        )
        params = {"ids": chunk} if in_batch else {}
        rows = session.execute(
            select(Outcome.decision_id, Outcome.type, Outcome.value)
            .where(outcome_filter, Outcome.late.is_(False))
            .order_by(Outcome.occurred_at),
            params,
        )
        for decision_id, event_type, value in rows:
            found[decision_id].append((event_type, value, 1.0))
        attributed = session.execute(
            select(Attribution.decision_id, Outcome.type, Outcome.value, Attribution.credit)
            .join(Outcome, Outcome.id == Attribution.outcome_id)
            .join(Decision, Decision.id == Attribution.decision_id)
            .where(credit_filter, Outcome.occurred_at <= Decision.window_closes_at)
            .order_by(Outcome.occurred_at),
            params,
        )
        for decision_id, event_type, value, credit in attributed:
            found[decision_id].append((event_type, value, credit))
    return found


# PostgreSQL: ``decision_id = ANY(:ids)`` with the batch's ids as one uuid[] parameter.
_IDS = bindparam("ids", type_=postgresql.ARRAY(Uuid))
_ANY_DECISION_ID = Outcome.decision_id == any_(_IDS)
_ANY_ATTRIBUTED_ID = Attribution.decision_id == any_(_IDS)


def _lock_key(config_id: uuid.UUID) -> int:
    return int.from_bytes(hashlib.sha256(config_id.bytes).digest()[:8], "big", signed=True)


def _try_lock(
    session: Session, config_id: uuid.UUID, idle_timeout: dt.timedelta | None = None
) -> bool:
    # PostgreSQL: a transaction-scoped advisory lock per configuration, so concurrent
    # workers skip a busy configuration instead of learning the same batch twice.
    # SQLite has a single writer anyway; the unique version number is the backstop.
    if session.get_bind().dialect.name != "postgresql":
        return True
    timeout = LEARN_IDLE_TIMEOUT if idle_timeout is None else idle_timeout
    db.limit_idle_in_transaction(session, timeout.total_seconds())
    return bool(session.scalar(select(func.pg_try_advisory_xact_lock(_lock_key(config_id)))))


def _log_busy(session: Session, config_id: uuid.UUID) -> None:
    """Say who holds the configuration's learn lock, and since when (a stall shows here)."""
    holder = None
    if session.get_bind().dialect.name == "postgresql":
        key = _lock_key(config_id)
        try:
            holder = session.execute(
                text(
                    "SELECT a.pid, a.state, a.client_addr, now() - a.xact_start "
                    "FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
                    "WHERE l.locktype = 'advisory' AND l.granted "
                    "AND l.classid = :high AND l.objid = :low AND l.objsubid = 1"
                ),
                {"high": (key >> 32) & 0xFFFFFFFF, "low": key & 0xFFFFFFFF},
            ).first()
        except Exception:  # noqa: BLE001 - only a log line: never fail the run for it
            holder = None
    if holder is None:
        log.info("learning of %s skipped: another learner holds it", config_id)
        return
    pid, state, address, held = holder
    level = logging.WARNING if held is not None and held > LEARN_IDLE_TIMEOUT else logging.INFO
    log.log(
        level,
        "learning of %s skipped: another learner holds it (PostgreSQL backend %s from %s, "
        "%s, its transaction open for %s)",
        config_id,
        pid,
        address or "local socket",
        state,
        held,
    )
