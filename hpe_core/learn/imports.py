"""Historical logged decisions (NDJSON), to warm-start learning and evaluation.

Each line: ``{user_id, channel, timestamp, context, action_id, probability, reward}`` or
``outcomes: [{type, value?, occurred_at?}]`` instead of ``reward``; optionally
``actions`` (the ids that were eligible, default: every action on that channel). A bad
line is rejected with its number and reason; the other lines are still imported.

Imported decisions are logged with ``source="import"`` and policy ``logged``: they are
learned and evaluated like live ones and appear in daily metrics, but they are not part
of the live treatment-vs-holdout experiment (they were chosen by another system).
"""

from __future__ import annotations

import datetime as dt
import json
import math
import uuid
from collections.abc import Iterable

from sqlalchemy import insert
from sqlalchemy.orm import Session

from hpe_core.decide.features import decision_features
from hpe_core.errors import InvalidInput
from hpe_core.learn.outcomes import CLOCK_SKEW, note_unweighted, unweighted_types
from hpe_core.store import stale_days
from hpe_core.store.models import Decision, Outcome, utcnow
from hpe_core.tenancy import activities, configs
from hpe_core.tenancy.settings import check_json_document
from hpe_core.tenancy.workspaces import Principal

MAX_LINES = 100_000
_CHUNK = 1000
_FIELDS = {
    "user_id",
    "channel",
    "timestamp",
    "context",
    "action_id",
    "probability",
    "reward",
    "outcomes",
    "actions",
}


class LineError(ValueError):
    pass


def _timestamp(text: object, name: str) -> dt.datetime:
    if not isinstance(text, str):
        raise LineError(f"{name} must be an ISO-8601 string")
    try:
        value = dt.datetime.fromisoformat(text)
    except ValueError as exc:
        raise LineError(f"{name} is not an ISO-8601 timestamp") from exc
    if value.tzinfo is None:
        raise LineError(f"{name} needs a timezone offset (e.g. Z)")
    try:
        return value.astimezone(dt.UTC)
    except OverflowError as exc:  # e.g. 0001-01-01T00:00+05:00 is before year 1 in UTC
        raise LineError(f"{name} is out of range") from exc


def parse_line(raw: object, settings: dict) -> dict:
    """Validate one parsed JSON line against the configuration. :raises LineError:"""
    if not isinstance(raw, dict):
        raise LineError("each line must be a JSON object")
    try:
        # NaN/Infinity, NUL and unpaired surrogates: PostgreSQL refuses them.
        check_json_document(raw, "line")
    except InvalidInput as exc:
        raise LineError(exc.errors["line"][0]) from exc
    unknown = set(raw) - _FIELDS
    if unknown:
        raise LineError(f"unknown field(s): {', '.join(sorted(unknown))}")
    for name in ("user_id", "channel", "timestamp", "action_id", "probability"):
        if name not in raw:
            raise LineError(f"missing {name}")
    user_id, channel, action_id = raw["user_id"], raw["channel"], raw["action_id"]
    if not isinstance(user_id, str) or not 0 < len(user_id) <= 256:
        raise LineError("user_id must be a string of 1-256 characters")
    if channel not in settings["channels"]:
        raise LineError(f"channel {channel!r} is not one of this configuration's channels")
    actions = {a["id"]: a for a in settings["actions"]}
    if action_id not in actions:
        raise LineError(f"unknown action_id {action_id!r}")
    probability = raw["probability"]
    if (
        isinstance(probability, bool)
        or not isinstance(probability, int | float)
        or not (0 < probability <= 1)
    ):
        raise LineError("probability must be a number in (0, 1]")
    context = raw.get("context") or {}
    if not isinstance(context, dict):
        raise LineError("context must be an object")
    eligible = raw.get("actions")
    if eligible is None:
        eligible = [
            a["id"]
            for a in settings["actions"]
            if not a.get("channels") or channel in a["channels"]
        ]
        if action_id not in eligible:
            eligible.append(action_id)
    elif (
        not isinstance(eligible, list)
        or action_id not in eligible
        or any(e not in actions for e in eligible)
    ):
        raise LineError("actions must list known action ids, including action_id")
    if ("reward" in raw) == ("outcomes" in raw):
        raise LineError("give either reward or outcomes")
    reward = raw.get("reward")
    if "reward" in raw and (
        isinstance(reward, bool) or not isinstance(reward, int | float) or not math.isfinite(reward)
    ):
        raise LineError("reward must be a finite number")
    timestamp = _timestamp(raw["timestamp"], "timestamp")
    events = []
    for position, event in enumerate(raw.get("outcomes") or []):
        if not isinstance(event, dict) or not isinstance(event.get("type"), str):
            raise LineError(f"outcomes[{position}] needs a type")
        value = event.get("value")
        if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)):
            raise LineError(f"outcomes[{position}].value must be a number")
        occurred = (
            _timestamp(event["occurred_at"], f"outcomes[{position}].occurred_at")
            if event.get("occurred_at")
            else timestamp
        )
        events.append({"type": event["type"][:64], "value": value, "occurred_at": occurred})
    return {
        "user_id": user_id,
        "channel": channel,
        "timestamp": timestamp,
        "context": context,
        "action_id": action_id,
        "probability": float(probability),
        "eligible": eligible,
        "reward": float(reward) if reward is not None else None,
        "events": events,
    }


def import_lines(
    session: Session,
    principal: Principal,
    config_id: uuid.UUID,
    lines: Iterable[bytes | str],
    now: dt.datetime | None = None,
) -> dict:
    """Import NDJSON lines.

    :returns: ``{import_id, accepted, rejected: [{line, error}], unweighted: [types]}``,
        where ``unweighted`` names the outcome types of accepted lines that
        ``reward.events`` does not list (kept and counted, weighing nothing)
    """
    now = now or utcnow()
    config = configs.get(session, principal, config_id)
    import_id = uuid.uuid4()
    accepted, rejected = 0, []
    decisions, outcomes = [], []
    for number, line in enumerate(lines, start=1):
        if number > MAX_LINES:
            rejected.append({"line": number, "error": f"over {MAX_LINES} lines; split the file"})
            break
        if not line.strip():
            continue
        try:
            parsed = parse_line(json.loads(line), config.settings)
        except json.JSONDecodeError as exc:
            rejected.append({"line": number, "error": f"invalid JSON: {exc.msg}"})
            continue
        except (RecursionError, ValueError) as exc:  # too deep, not UTF-8, huge integer
            rejected.append({"line": number, "error": f"unreadable JSON: {exc}"[:200]})
            continue
        except LineError as exc:
            rejected.append({"line": number, "error": str(exc)})
            continue
        # History cannot be in the future (beyond clock skew); daily metrics rely on a
        # decision's outcomes being received no earlier than CLOCK_SKEW before it.
        if parsed["timestamp"] > now + CLOCK_SKEW:
            rejected.append({"line": number, "error": "timestamp is in the future"})
            continue
        decision_id = uuid.uuid4()
        n = len(parsed["eligible"])
        decisions.append(
            {
                "id": decision_id,
                "workspace_id": config.workspace_id,
                "config_id": config.id,
                "user_id": parsed["user_id"],
                "channel": parsed["channel"],
                "context": parsed["context"],
                "features": decision_features(parsed["channel"], parsed["context"]),
                "eligible": parsed["eligible"],
                # The logging policy's full distribution is unknown; only the chosen
                # action's propensity is, which is all that learning and IPS need.
                "probabilities": [None] * n,
                "action_id": parsed["action_id"],
                "probability": parsed["probability"],
                "variant": "holdout",
                "policy": "logged",
                "model_version": 0,
                "model_action_id": None,
                "source": "import",
                "created_at": parsed["timestamp"],
                "window_closes_at": now,  # complete history: learn at the next sweep
                "given_reward": parsed["reward"],
            }
        )
        for position, event in enumerate(parsed["events"]):
            outcomes.append(
                {
                    "id": uuid.uuid4(),
                    "workspace_id": config.workspace_id,
                    "config_id": config.id,
                    "decision_id": decision_id,
                    "user_id": parsed["user_id"],
                    "type": event["type"],
                    "value": event["value"],
                    "occurred_at": event["occurred_at"],
                    "received_at": now,
                    "idempotency_key": f"i:{import_id}:{decision_id}:{position}",
                    "late": False,
                    "source": "import",
                }
            )
        accepted += 1
    for start in range(0, len(decisions), _CHUNK):
        session.execute(insert(Decision.__table__), decisions[start : start + _CHUNK])
    for start in range(0, len(outcomes), _CHUNK):
        session.execute(insert(Outcome.__table__), outcomes[start : start + _CHUNK])
    # Imported history lands on past days, possibly already rolled up.
    stale_days.mark_stale(session, config.id, {d["created_at"].date() for d in decisions})
    unweighted = unweighted_types(config.settings["reward"], (o["type"] for o in outcomes))
    note_unweighted(session, config, unweighted, actor=principal.actor, source="import")
    activities.record(
        session,
        workspace_id=config.workspace_id,
        config_id=config.id,
        type="import.completed",
        actor=principal.actor,
        data={"import_id": str(import_id), "accepted": accepted, "rejected": len(rejected)},
    )
    return {
        "import_id": import_id,
        "accepted": accepted,
        "rejected": rejected,
        "unweighted": unweighted,
    }
