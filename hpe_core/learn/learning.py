"""Join closed decisions with their outcomes and learn them: one learner per configuration.

A learn run is one database transaction: read a batch of closed, unlearned decisions
and their outcomes, learn them on the newest model, save the next model version and mark
the decisions learned. If the process dies before the commit nothing changed (the next
run redoes the batch); two runs racing on one configuration cannot both commit (the
version number is unique, and on PostgreSQL an advisory lock keeps the second one out).
So every decision is learned exactly once.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import logging
import threading
import uuid
from collections import defaultdict

from sqlalchemy import bindparam, case, func, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from hpe_core.decide.features import ActionCatalog, decision_features
from hpe_core.decide.policy import store
from hpe_core.decide.policy.exploration import vw_arguments
from hpe_core.decide.policy.learner import Learner
from hpe_core.learn import rewards
from hpe_core.store import stale_days
from hpe_core.store.models import Attribution, Config, Decision, Outcome, utcnow
from hpe_core.tenancy import activities

log = logging.getLogger(__name__)

BATCH_SIZE = 5000
MODEL_UPDATED = "model.updated"


@dataclasses.dataclass
class LearnReport:
    config_id: uuid.UUID
    learned: int = 0
    skipped: int = 0
    version: int | None = None
    busy: bool = False


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
        report.busy = True
        return report
    config = session.get(Config, config_id)
    if config is None:
        return report
    # Plain rows, not ORM objects: a batch is thousands of decisions, and the learner needs
    # only these columns.
    decisions = session.execute(
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
        )
        .where(
            Decision.config_id == config_id,
            Decision.learned_at.is_(None),
            Decision.window_closes_at <= now,
        )
        .order_by(Decision.created_at, Decision.id)
        .limit(batch_size)
    ).all()
    if not decisions:
        session.rollback()
        return report

    reward_settings = config.settings["reward"]
    events = _outcomes_by_decision(session, [d.id for d in decisions])
    catalog = ActionCatalog(config.settings["actions"])
    args = vw_arguments(config.settings["exploration"])
    previous = store.latest(session, config_id)
    learner = _warm_learners.take(config_id, previous, args)

    examples, marks = [], []
    for decision in decisions:
        types_values = events.get(decision.id, [])
        if decision.given_reward is not None:
            reward = decision.given_reward
            engaged = reward > 0
        elif types_values:
            reward = rewards.combine(reward_settings, types_values)
            engaged = rewards.is_engaged(reward_settings, types_values)
        else:
            reward, engaged = reward_settings["default"], False
        marks.append((decision.id, reward, engaged))
        # Actions removed from the settings since the decision cannot be featurized.
        present = [a for a in decision.eligible if a in catalog]
        if decision.action_id not in catalog or decision.probability <= 0:
            report.skipped += 1
            continue
        examples.append(
            (
                decision.features or decision_features(decision.channel, decision.context or {}),
                catalog.lines(present),
                present.index(decision.action_id),
                reward,
                decision.probability,
            )
        )
    try:
        learned = learner.learn_batch(examples) if examples else 0
        model = learner.save()
        version = store.save(
            session, config_id, args=args, model=model, examples=learned, previous=previous
        )
        _mark_learned(session, marks, now)
        # Rewards changed on these decisions' days: a rolled-up day must be recomputed.
        stale_days.mark_stale_decisions(session, config_id, [mark[0] for mark in marks], now=now)
        activities.record(
            session,
            workspace_id=config.workspace_id,
            config_id=config_id,
            type=MODEL_UPDATED,
            actor="engine",
            data={"version": version.version, "examples": learned, "skipped": report.skipped},
        )
        store.prune(session, config_id)
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
        report = learn_closed(session, config_id, batch_size=batch_size, **kwargs)
        total.learned += report.learned
        total.skipped += report.skipped
        total.version = report.version or total.version
        total.busy = report.busy
        if report.busy or report.learned + report.skipped < batch_size:
            return total


class _WarmLearners:
    """The learner each configuration last committed, kept in this worker's memory.

    Reloading a model from its bytes for every run costs more than learning a small
    batch. A kept learner is reused only while its version is still the newest (no other
    worker or rollback wrote one since); otherwise the newest version is loaded.
    """

    def __init__(self):
        self._learners: dict[uuid.UUID, tuple[int, str, Learner]] = {}
        self._lock = threading.Lock()

    def take(self, config_id: uuid.UUID, newest, args: str) -> Learner:
        with self._lock:
            kept = self._learners.pop(config_id, None)
        if kept is not None:
            version, checksum, learner = kept
            if (
                newest is not None
                and newest.version == version
                and newest.checksum == checksum
                and learner.args == args
            ):
                return learner
            learner.close()
        # First run, or exploration settings changed: start afresh.
        return store.load_learner(newest, args) or Learner(args)

    def keep(self, config_id: uuid.UUID, version: int, checksum: str, learner: Learner) -> None:
        with self._lock:
            old = self._learners.get(config_id)
            self._learners[config_id] = (version, checksum, learner)
        if old is not None:
            old[2].close()


_warm_learners = _WarmLearners()


def _mark_learned(session: Session, marks: list[tuple], now: dt.datetime) -> None:
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
        [{"decision_id": i, "now": now, "r": r, "e": e} for i, r, e in marks],
    )


def _outcomes_by_decision(session: Session, ids: list[uuid.UUID]) -> dict:
    """Decision id -> its on-time outcomes as ``(type, value, credit)`` for
    :func:`rewards.combine`: outcomes tied to it (credit 1.0, not ``late``) and the
    user-level outcomes attribution credited to it that occurred before its window closed.

    Attribution written after a decision was learned never changes its reward (learning
    happens once); it still counts in metrics.
    """
    found: dict[uuid.UUID, list[tuple[str, float | None, float]]] = defaultdict(list)
    for start in range(0, len(ids), 1000):  # keep IN lists a reasonable size
        chunk = ids[start : start + 1000]
        rows = session.execute(
            select(Outcome.decision_id, Outcome.type, Outcome.value)
            .where(Outcome.decision_id.in_(chunk), Outcome.late.is_(False))
            .order_by(Outcome.occurred_at)
        )
        for decision_id, event_type, value in rows:
            found[decision_id].append((event_type, value, 1.0))
        attributed = session.execute(
            select(Attribution.decision_id, Outcome.type, Outcome.value, Attribution.credit)
            .join(Outcome, Outcome.id == Attribution.outcome_id)
            .join(Decision, Decision.id == Attribution.decision_id)
            .where(
                Attribution.decision_id.in_(chunk),
                Outcome.occurred_at <= Decision.window_closes_at,
            )
            .order_by(Outcome.occurred_at)
        )
        for decision_id, event_type, value, credit in attributed:
            found[decision_id].append((event_type, value, credit))
    return found


def _try_lock(session: Session, config_id: uuid.UUID) -> bool:
    # PostgreSQL: a transaction-scoped advisory lock per configuration, so concurrent
    # workers skip a busy configuration instead of learning the same batch twice.
    # SQLite has a single writer anyway; the unique version number is the backstop.
    if session.get_bind().dialect.name != "postgresql":
        return True
    key = int.from_bytes(hashlib.sha256(config_id.bytes).digest()[:8], "big", signed=True)
    return bool(session.scalar(select(func.pg_try_advisory_xact_lock(key))))
