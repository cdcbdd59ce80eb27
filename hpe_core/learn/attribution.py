"""Cross-touchpoint attribution of user-level outcomes to the user's decisions.

An outcome that arrives with a ``user_id`` but no ``decision_id`` (a purchase on the
site, an offline conversion) is split over that user's decisions in the same
configuration made during the ``attribution.window_hours`` before it, on any channel,
live or imported ("touches"). The configured model (a plugin, see
``hpe_register_attribution_models``) decides the shares; each share > 0 becomes one
:class:`~hpe_core.store.models.Attribution` row. Learning reads them as partial rewards
(:mod:`hpe_core.learn.learning`), rollups as engagements and revenue.

A run works through the waiting outcomes in batches, one transaction each: an outcome's
previous credit rows are replaced (never added to), its ``attributed_at`` is set, and the
days of every decision whose credit changed are marked for a new rollup. So a rerun, or
:func:`reattribute` followed by a run, never counts an outcome twice.
"""

from __future__ import annotations

import bisect
import dataclasses
import datetime as dt
import hashlib
import logging
import math
import uuid
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from numbers import Real
from typing import NamedTuple

from sqlalchemy import and_, delete, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from hpe_core.errors import NotFound
from hpe_core.learn.learning import LEARN_IDLE_TIMEOUT
from hpe_core.store import db, stale_days
from hpe_core.store.models import Attribution, Config, Decision, Outcome, utcnow
from hpe_core.tenancy import configs

log = logging.getLogger(__name__)

BATCH_SIZE = 1000
#: Used when the configured model is not installed (its plugin was removed): the
#: conversion still reaches a decision, and ``hpe attribution rerun`` can redo it later.
FALLBACK_MODEL = "last_touch"
#: How far a model's shares may sum away from 1 (float rounding) and still be accepted.
SUM_TOLERANCE = 1e-6
_IN_CHUNK = 1000  # keep IN lists a reasonable size


class Touch(NamedTuple):
    """One decision that may share a conversion's credit (models receive these)."""

    decision_id: uuid.UUID
    decided_at: dt.datetime
    channel: str


class CreditError(ValueError):
    """A model returned shares that are not a valid split of one conversion."""


@dataclasses.dataclass
class AttributionReport:
    """What one :func:`attribute_pending` run did (plain values: RQ stores it as JSON).

    :param outcomes: outcomes attributed (``attributed_at`` set), with or without touches
    :param credited_decisions: credit rows written (one per decision and outcome)
    :param unattributed: outcomes with no decision in their window (attributed, no rows)
    :param skipped: outcomes the model gave invalid credit: left waiting, nothing written
    :param model: the model that gave the credit (``FALLBACK_MODEL`` if not installed)
    :param busy: another run holds this configuration (PostgreSQL); it does the work
    """

    config_id: str
    outcomes: int = 0
    credited_decisions: int = 0
    unattributed: int = 0
    skipped: int = 0
    model: str | None = None
    busy: bool = False


def configs_with_pending(session: Session) -> list[uuid.UUID]:
    """Configurations with user-level outcomes waiting for attribution (for the sweeper)."""
    return list(
        session.scalars(
            select(Outcome.config_id)
            .where(Outcome.decision_id.is_(None), Outcome.attributed_at.is_(None))
            .group_by(Outcome.config_id)
        )
    )


def check_credit(shares: object, touches: int) -> list[float]:
    """Check a model's answer: one finite share >= 0 per touch, summing to 1.

    :param shares: what the model's ``credit`` returned
    :param touches: how many touches it was given
    :returns: the shares as floats
    :raises CreditError: saying what is wrong (the model's fault, never the caller's)
    """
    if not isinstance(shares, Sequence) or isinstance(shares, str | bytes):
        raise CreditError(f"returned {type(shares).__name__}, not a list of shares")
    if len(shares) != touches:
        raise CreditError(f"returned {len(shares)} share(s) for {touches} touch(es)")
    values = []
    for share in shares:
        if isinstance(share, bool) or not isinstance(share, Real) or not math.isfinite(share):
            raise CreditError(f"returned {share!r}, not a finite number")
        if share < 0:
            raise CreditError(f"returned a negative share {share!r}")
        values.append(float(share))
    if abs(math.fsum(values) - 1.0) > SUM_TOLERANCE:
        raise CreditError(f"returned shares summing to {math.fsum(values)!r}, not 1")
    return values


@dataclasses.dataclass(frozen=True)
class _Crediting:
    """How one run gives credit: the model, its options and the window of touches.

    :param options: the configuration's ``attribution`` block, as models receive it
    """

    config_id: uuid.UUID
    workspace_id: str
    model: str
    credit: Callable[[Sequence[Touch], dt.datetime, Mapping], object]
    options: Mapping
    window: dt.timedelta


@dataclasses.dataclass(frozen=True)
class _BatchCredit:
    """What the model gave one batch.

    :param done: outcomes to mark attributed (credited, or with no touch in their window)
    :param rows: the credit rows to write
    """

    done: list[uuid.UUID]
    rows: list[dict]
    unattributed: int
    skipped: int


def attribute_pending(
    session: Session,
    config_id: uuid.UUID,
    models: Mapping[str, object],
    *,
    now: dt.datetime | None = None,
    batch_size: int = BATCH_SIZE,
) -> AttributionReport:
    """Attribute the configuration's waiting user-level outcomes, oldest received first.

    Each batch is one committed transaction. An outcome the model gives invalid credit
    (or whose model raises) is logged and left waiting; this run does not retry it (the
    next sweep does). An unknown ``attribution.model`` falls back to last touch.

    :param models: model name -> model with ``credit(touches, conversion_at, options)``
    :param now: the time written to ``attributed_at`` (tests pin it)
    :returns: what was attributed; ``busy`` if another run holds the configuration
    """
    now = now or utcnow()
    report = AttributionReport(str(config_id))
    config = session.get(Config, config_id)
    if config is None:
        session.rollback()
        return report
    crediting = _crediting(config, models)
    report.model = crediting.model
    # Keyset cursor: outcomes this run skipped stay waiting but are not picked up again
    # by the same run, so a broken model cannot make it loop forever.
    after: tuple[dt.datetime, uuid.UUID] | None = None
    while True:
        if not _try_lock(session, config_id):
            session.rollback()
            report.busy = True
            return report
        batch = _waiting(session, config_id, after, batch_size)
        if not batch:
            session.rollback()
            return report
        after = (batch[-1].received_at, batch[-1].id)
        credit = _credit_batch(session, crediting, batch, now)
        if not _commit_credit(session, config_id, credit, now):
            report.busy = True
            return report
        _add(report, credit)
        if len(batch) < batch_size:
            return report


def _crediting(config: Config, models: Mapping[str, object]) -> _Crediting:
    settings = configs.settings_of(config).attribution
    name, credit = _resolve_model(settings.model, models, config.id)
    return _Crediting(
        config_id=config.id,
        workspace_id=config.workspace_id,
        model=name,
        credit=credit,
        options=dataclasses.asdict(settings),
        window=dt.timedelta(hours=settings.window_hours),
    )


def _credit_batch(
    session: Session, crediting: _Crediting, batch: list[_Waiting], now: dt.datetime
) -> _BatchCredit:
    """Ask the model for each outcome's shares over its touches (decisions in its window)."""
    touches = _touches(session, crediting, batch)
    done: list[uuid.UUID] = []
    rows: list[dict] = []
    unattributed = skipped = 0
    for outcome in batch:
        found = touches.get(outcome.id, [])
        if not found:
            unattributed += 1
            done.append(outcome.id)
            continue
        shares = _shares(crediting, outcome, found)
        if shares is None:
            skipped += 1
            continue
        done.append(outcome.id)
        rows.extend(
            _credit_row(crediting, outcome.id, touch.decision_id, share, now)
            for touch, share in zip(found, shares, strict=True)
            if share > 0
        )
    return _BatchCredit(done, rows, unattributed, skipped)


def _shares(crediting: _Crediting, outcome: _Waiting, touches: list[Touch]) -> list[float] | None:
    """The model's valid shares for one outcome, or None (logged) when it gave none."""
    try:
        answer = crediting.credit(touches, outcome.occurred_at, crediting.options)
        return check_credit(answer, len(touches))
    except Exception as exc:  # a plugin's bug must not stop the other outcomes
        log.warning(
            "attribution model %r gave no valid credit for outcome %s (left waiting): %s",
            crediting.model,
            outcome.id,
            exc,
        )
        return None


def _credit_row(
    crediting: _Crediting,
    outcome_id: uuid.UUID,
    decision_id: uuid.UUID,
    share: float,
    now: dt.datetime,
) -> dict:
    return {
        "id": uuid.uuid4(),
        "workspace_id": crediting.workspace_id,
        "config_id": crediting.config_id,
        "outcome_id": outcome_id,
        "decision_id": decision_id,
        "model": crediting.model,
        "credit": share,
        "created_at": now,
    }


def _commit_credit(
    session: Session, config_id: uuid.UUID, credit: _BatchCredit, now: dt.datetime
) -> bool:
    """Write one batch's credit and commit. :returns: False if another run got there first"""
    try:
        _replace_credit(session, config_id, credit.done, credit.rows, now)
        session.commit()
    except IntegrityError:
        # Another run (SQLite, no advisory lock) wrote these outcomes' credit first.
        session.rollback()
        return False
    return True


def _add(report: AttributionReport, credit: _BatchCredit) -> None:
    report.outcomes += len(credit.done)
    report.credited_decisions += len(credit.rows)
    report.unattributed += credit.unattributed
    report.skipped += credit.skipped


def reattribute(session: Session, config_id: uuid.UUID, *, since: dt.datetime) -> int:
    """Make the next attribution run redo the user-level outcomes that occurred since
    ``since`` (after a model or window change, or an import of older decisions).

    Their credit rows stay until that run replaces them, so metrics never see a gap or a
    double count. The caller commits.

    :param since: timezone-aware; outcomes with ``occurred_at >= since`` are redone
    :returns: how many outcomes now wait for attribution again
    :raises NotFound: if the configuration does not exist
    """
    if session.get(Config, config_id) is None:
        raise NotFound("Configuration not found.", {"config_id": ["Unknown configuration."]})
    result = session.execute(
        update(Outcome)
        .where(
            Outcome.config_id == config_id,
            Outcome.decision_id.is_(None),
            Outcome.attributed_at.is_not(None),
            Outcome.occurred_at >= since,
        )
        .values(attributed_at=None)
        .execution_options(synchronize_session=False)
    )
    return result.rowcount


def _resolve_model(name: str, models: Mapping[str, object], config_id: uuid.UUID):
    model = models.get(name)
    if model is not None:
        return name, model.credit
    log.warning(
        "attribution model %r of configuration %s is not installed; crediting the last "
        "touch instead (run `hpe attribution rerun` once it is back)",
        name,
        config_id,
    )
    fallback = models.get(FALLBACK_MODEL)
    return FALLBACK_MODEL, fallback.credit if fallback is not None else _last_touch


def _last_touch(touches: Sequence[Touch], conversion_at: dt.datetime, options: Mapping):
    # The fallback when even the built-in models are not registered (plugin blocked).
    return [0.0] * (len(touches) - 1) + [1.0]


class _Waiting(NamedTuple):
    """A user-level outcome waiting for attribution."""

    id: uuid.UUID
    user_id: str
    occurred_at: dt.datetime
    received_at: dt.datetime


def _waiting(
    session: Session,
    config_id: uuid.UUID,
    after: tuple[dt.datetime, uuid.UUID] | None,
    batch_size: int,
) -> list[_Waiting]:
    query = select(Outcome.id, Outcome.user_id, Outcome.occurred_at, Outcome.received_at).where(
        Outcome.config_id == config_id,
        Outcome.decision_id.is_(None),
        Outcome.attributed_at.is_(None),
    )
    if after is not None:
        received_at, outcome_id = after
        query = query.where(
            or_(
                Outcome.received_at > received_at,
                and_(Outcome.received_at == received_at, Outcome.id > outcome_id),
            )
        )
    rows = session.execute(query.order_by(Outcome.received_at, Outcome.id).limit(batch_size))
    return [_Waiting(*row) for row in rows]


def _touches(
    session: Session, crediting: _Crediting, batch: list[_Waiting]
) -> dict[uuid.UUID, list[Touch]]:
    """Outcome id -> its touches: the user's decisions in this configuration made in
    ``[occurred_at - window, occurred_at]``, oldest first."""
    users = sorted({o.user_id for o in batch if o.user_id})
    if not users:
        return {}
    window = crediting.window
    by_user = _decisions_by_user(
        session,
        crediting,
        users,
        earliest=min(o.occurred_at for o in batch) - window,
        latest=max(o.occurred_at for o in batch),
    )
    found = {}
    for outcome in batch:
        decisions = by_user.get(outcome.user_id, [])
        times = [touch.decided_at for touch in decisions]
        first = bisect.bisect_left(times, outcome.occurred_at - window)
        last = bisect.bisect_right(times, outcome.occurred_at)
        if first < last:
            found[outcome.id] = decisions[first:last]
    return found


def _decisions_by_user(
    session: Session,
    crediting: _Crediting,
    users: list[str],
    *,
    earliest: dt.datetime,
    latest: dt.datetime,
) -> dict[str, list[Touch]]:
    """These users' decisions in the configuration made in ``[earliest, latest]``, oldest
    first."""
    by_user: dict[str, list[Touch]] = defaultdict(list)
    for start in range(0, len(users), _IN_CHUNK):
        rows = session.execute(
            select(Decision.id, Decision.user_id, Decision.created_at, Decision.channel)
            .where(
                Decision.config_id == crediting.config_id,
                Decision.workspace_id == crediting.workspace_id,
                Decision.user_id.in_(users[start : start + _IN_CHUNK]),
                Decision.created_at >= earliest,
                Decision.created_at <= latest,
            )
            .order_by(Decision.created_at, Decision.id)
        )
        for row in rows:
            by_user[row.user_id].append(Touch(row.id, row.created_at, row.channel))
    return by_user


def _replace_credit(
    session: Session, config_id: uuid.UUID, outcome_ids: list[uuid.UUID], rows: list[dict], now
) -> None:
    """Replace these outcomes' credit rows, mark them attributed and their decisions'
    days stale: the caller's transaction, all or nothing."""
    if not outcome_ids:
        return
    credited = {row["decision_id"] for row in rows}
    for start in range(0, len(outcome_ids), _IN_CHUNK):
        chunk = outcome_ids[start : start + _IN_CHUNK]
        # Decisions losing credit need a new rollup as much as those gaining it.
        credited.update(
            session.scalars(
                select(Attribution.decision_id).where(Attribution.outcome_id.in_(chunk))
            )
        )
        session.execute(delete(Attribution).where(Attribution.outcome_id.in_(chunk)))
        session.execute(
            update(Outcome)
            .where(Outcome.id.in_(chunk))
            .values(attributed_at=now)
            .execution_options(synchronize_session=False)
        )
    if rows:
        session.execute(insert(Attribution), rows)
    stale_days.mark_stale_decisions(session, config_id, sorted(credited), now=now)


def _try_lock(session: Session, config_id: uuid.UUID) -> bool:
    # PostgreSQL: a transaction-scoped advisory lock per configuration, so two runs never
    # attribute the same outcomes at once. The key is hashed with a prefix so it never
    # equals learning's lock on the same configuration (attribution must not wait for a
    # long learn run). SQLite has a single writer; the unique (outcome, decision) is the
    # backstop there.
    if session.get_bind().dialect.name != "postgresql":
        return True
    # Like learning's lock, it cannot outlive a holder that vanished (see learning.py).
    db.limit_idle_in_transaction(session, LEARN_IDLE_TIMEOUT.total_seconds())
    digest = hashlib.sha256(b"hpe-attribution:" + config_id.bytes).digest()
    key = int.from_bytes(digest[:8], "big", signed=True)
    return bool(session.scalar(select(func.pg_try_advisory_xact_lock(key))))
