"""Historical logged decisions (NDJSON), to warm-start learning and evaluation.

Each line is one logged decision (:mod:`hpe_core.learn.import_format` checks it). A bad
line is rejected with its number and reason; the other lines are still imported.

Imported decisions are logged with ``source="import"`` and policy ``logged``: they are
learned and evaluated like live ones and appear in daily metrics, but they are not part
of the live treatment-vs-holdout experiment (they were chosen by another system).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import uuid
from collections.abc import Iterable

from sqlalchemy import insert
from sqlalchemy.orm import Session

from hpe_core.decide.features import decision_features
from hpe_core.errors import TooLarge
from hpe_core.learn.import_format import ImportLine, ImportLineSchema, LineError, parse_line
from hpe_core.learn.outcomes import CLOCK_SKEW, note_unweighted, unweighted_types
from hpe_core.store import idempotency, stale_days
from hpe_core.store.models import Config, Decision, Outcome, utcnow
from hpe_core.store.vocabulary import DecisionSource, Policy, Variant
from hpe_core.tenancy import activities, configs
from hpe_core.tenancy.workspaces import Principal

MAX_LINES = 100_000
_CHUNK = 1000
#: The activity an import writes (``{"import_id", "accepted", "rejected"}``).
IMPORT_COMPLETED = "import.completed"


@dataclasses.dataclass(frozen=True)
class ReadLines:
    """What an import read.

    :param lines: the valid lines, in order
    :param rejected: ``{line, error}`` for each rejected line (the answer's ``rejected``)
    """

    lines: tuple[ImportLine, ...]
    rejected: list[dict]


@dataclasses.dataclass(frozen=True)
class ImportAnswer:
    """The answer to one import request.

    :param answer: ``{import_id, accepted, rejected, unweighted}``
    :param replayed: the same file (or Idempotency-Key) came before: this is the first
        answer, and nothing was imported again
    """

    answer: dict
    replayed: bool = False


def import_body(
    session: Session,
    principal: Principal,
    config_id: uuid.UUID,
    body: bytes,
    *,
    idempotency_key: str | None = None,
    now: dt.datetime | None = None,
) -> ImportAnswer:
    """Import an NDJSON body once (Stripe's rule, shared/DESIGN.md §5).

    The request's key is the caller's ``Idempotency-Key``, else the file's SHA-256: the
    same file sent again to the same configuration answers the first answer and imports
    nothing; another file under the same ``Idempotency-Key`` is a 409.

    :raises NotFound: the configuration is unknown or another workspace's
    :raises TooLarge: more than :data:`MAX_LINES` lines (nothing is imported)
    :raises Conflict: the ``Idempotency-Key`` was used for another request
    """
    configs.get(session, principal, config_id)
    lines = body.splitlines()
    count = sum(1 for line in lines if line.strip())
    if count > MAX_LINES:
        raise TooLarge(
            f"{count} lines: at most {MAX_LINES} per request. Split the file; nothing was "
            "imported.",
            {"body": [f"At most {MAX_LINES} lines."]},
        )
    request_digest = idempotency.digest(body)
    scope = f"POST /{config_id}/imports"
    key = f"key:{idempotency_key}" if idempotency_key else f"file:{config_id}:{request_digest}"
    first = idempotency.claim(session, principal.workspace_id, key, scope, request_digest)
    if first is not None:
        return ImportAnswer(answer=first[1], replayed=True)
    answer = import_lines(session, principal, config_id, lines, now=now)
    stored = {**answer, "import_id": str(answer["import_id"])}
    idempotency.remember(session, principal.workspace_id, key, 202, stored)
    return ImportAnswer(answer=stored)


def import_lines(
    session: Session,
    principal: Principal,
    config_id: uuid.UUID,
    lines: Iterable[bytes | str],
    now: dt.datetime | None = None,
) -> dict:
    """Import NDJSON lines: store the valid ones, reject the others with their number.

    :returns: ``{import_id, accepted, rejected: [{line, error}], unweighted: [types]}``,
        where ``unweighted`` names the outcome types of accepted lines that
        ``reward.events`` does not list (kept and counted, weighing nothing)
    :raises NotFound: the configuration is unknown or another workspace's
    """
    now = now or utcnow()
    config = configs.get(session, principal, config_id)
    settings = configs.settings_of(config)
    import_id = uuid.uuid4()
    read = read_lines(lines, ImportLineSchema(settings), now)
    decisions, outcomes = _rows(config, import_id, read.lines, now)
    _insert(session, Decision, decisions)
    _insert(session, Outcome, outcomes)
    # Imported history lands on past days, possibly already rolled up.
    stale_days.mark_stale(session, config.id, {line.timestamp.date() for line in read.lines})
    unweighted = unweighted_types(settings.reward, (row["type"] for row in outcomes))
    note_unweighted(
        session, config, unweighted, actor=principal.actor, source=DecisionSource.IMPORT
    )
    accepted = len(read.lines)
    activities.record(
        session,
        workspace_id=config.workspace_id,
        config_id=config.id,
        type=IMPORT_COMPLETED,
        actor=principal.actor,
        data={"import_id": str(import_id), "accepted": accepted, "rejected": len(read.rejected)},
    )
    return {
        "import_id": import_id,
        "accepted": accepted,
        "rejected": read.rejected,
        "unweighted": unweighted,
    }


def read_lines(
    lines: Iterable[bytes | str], schema: ImportLineSchema, now: dt.datetime
) -> ReadLines:
    """Parse and check every line (blank ones are skipped); a line past :data:`MAX_LINES`
    is rejected (:func:`import_body` refuses such a file whole before reading it).

    :param now: the import's time: a line more than :data:`CLOCK_SKEW` after it is rejected
    """
    valid, rejected = [], []
    for number, text in enumerate(lines, start=1):
        if not text.strip():
            continue
        if len(valid) + len(rejected) >= MAX_LINES:
            rejected.append({"line": number, "error": f"over {MAX_LINES} lines; split the file"})
            continue
        try:
            valid.append(_read_line(text, schema, now))
        except LineError as exc:
            rejected.append({"line": number, "error": str(exc)})
    return ReadLines(tuple(valid), rejected)


def _read_line(text: bytes | str, schema: ImportLineSchema, now: dt.datetime) -> ImportLine:
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as exc:
        raise LineError(f"invalid JSON: {exc.msg}") from exc
    except (RecursionError, ValueError) as exc:  # too deep, not UTF-8, huge integer
        raise LineError(f"unreadable JSON: {exc}"[:200]) from exc
    line = parse_line(raw, schema)
    # History cannot be in the future (beyond clock skew); daily metrics rely on a
    # decision's outcomes being received no earlier than CLOCK_SKEW before it.
    if line.timestamp > now + CLOCK_SKEW:
        raise LineError("timestamp is in the future")
    return line


def _rows(
    config: Config, import_id: uuid.UUID, lines: Iterable[ImportLine], now: dt.datetime
) -> tuple[list[dict], list[dict]]:
    """The decision and outcome rows of the accepted lines."""
    decisions, outcomes = [], []
    for line in lines:
        decision = _decision_row(config, line, now)
        decisions.append(decision)
        outcomes.extend(_outcome_rows(config, line, decision["id"], import_id, now))
    return decisions, outcomes


def _decision_row(config: Config, line: ImportLine, now: dt.datetime) -> dict:
    return {
        "id": uuid.uuid4(),
        "workspace_id": config.workspace_id,
        "config_id": config.id,
        "user_id": line.user_id,
        "channel": line.channel,
        "context": line.context,
        "features": decision_features(line.channel, line.context),
        "eligible": line.eligible,
        # The logging policy's full distribution is unknown; only the chosen action's
        # propensity is, which is all that learning and IPS need.
        "probabilities": [None] * len(line.eligible),
        "action_id": line.action_id,
        "probability": line.probability,
        "variant": Variant.HOLDOUT,
        "policy": Policy.LOGGED,
        "model_version": 0,
        "model_action_id": None,
        "source": DecisionSource.IMPORT,
        "created_at": line.timestamp,
        "window_closes_at": now,  # complete history: learn at the next sweep
        "given_reward": line.reward,
    }


def _outcome_rows(
    config: Config,
    line: ImportLine,
    decision_id: uuid.UUID,
    import_id: uuid.UUID,
    now: dt.datetime,
) -> list[dict]:
    return [
        {
            "id": uuid.uuid4(),
            "workspace_id": config.workspace_id,
            "config_id": config.id,
            "decision_id": decision_id,
            "user_id": line.user_id,
            "type": event.type,
            "value": event.value,
            "occurred_at": event.occurred_at,
            "received_at": now,
            "idempotency_key": f"i:{import_id}:{decision_id}:{position}",
            "late": False,
            "source": DecisionSource.IMPORT,
        }
        for position, event in enumerate(line.events)
    ]


def _insert(session: Session, model: type[Decision] | type[Outcome], rows: list[dict]) -> None:
    for start in range(0, len(rows), _CHUNK):
        session.execute(insert(model.__table__), rows[start : start + _CHUNK])
