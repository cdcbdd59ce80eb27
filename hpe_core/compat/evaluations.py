"""Personalizer's offline evaluations, answered from HPE's off-policy evaluation.

Creating an evaluation runs :func:`hpe_core.measure.evaluation.evaluate` at once over the
UTC days its ``startTime`` and ``endTime`` fall on, for the model (Personalizer's online
policy) and the configured holdout baseline (``Baseline`` for a fixed action, ``Random``
for the uniform one). Each policy's ``expectedReward`` is HPE's doubly robust estimate,
with its 95% interval; the series has one point, for the whole range. The result is kept
as it was computed, like a finished Personalizer job.

Evaluations are kept in the activity log, where they are visible anyway: creating one
records ``personalizer.evaluation_created`` with the whole answer, deleting one records
``personalizer.evaluation_deleted``. Nothing is erased from the log; an evaluation exists
from its creation until a later deletion of its id.

What HPE does not do: replay training with other learning settings. A custom policy is
accepted only when its arguments are the configuration's own (it is then the model), and
``enablePolicyOptimization`` is accepted but no optimal policy is searched for (the
answer's ``description`` says so; HPE's recommendations propose exploration changes).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import uuid
from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from hpe_core.compat.errors import coded, invalid
from hpe_core.compat.loop_settings import POLICY_ERROR, parse_vw_arguments, update_policy
from hpe_core.decide.policy.exploration import vw_arguments
from hpe_core.errors import Conflict, NotFound
from hpe_core.measure import evaluation
from hpe_core.results import Evaluation, PolicyEstimate
from hpe_core.store.models import Activity, Config, utcnow
from hpe_core.store.vocabulary import Policy
from hpe_core.tenancy import activities, configs
from hpe_core.tenancy.configs import Catalog, settings_of
from hpe_core.tenancy.settings import check_json_document
from hpe_core.tenancy.settings_types import Settings
from hpe_core.tenancy.workspaces import Principal

EVALUATION_CREATED = "personalizer.evaluation_created"
EVALUATION_DELETED = "personalizer.evaluation_deleted"
CONTRACT_ERROR = "InvalidEvaluationContract"
MAX_EVALUATION_ID_LENGTH = 256


@dataclasses.dataclass(frozen=True, slots=True)
class EvaluationRequest:
    """A create-evaluation call, its shapes checked.

    :param policies: ``(name, arguments)`` of custom learning settings to evaluate
    """

    name: str
    start: dt.datetime
    end: dt.datetime
    optimize: bool = False
    policies: tuple[tuple[str, str], ...] = ()


def create(
    session: Session,
    principal: Principal,
    config_id: uuid.UUID,
    evaluation_id: str,
    request: EvaluationRequest,
    now: dt.datetime | None = None,
) -> dict:
    """Evaluate and keep the result (not committed).

    :returns: the evaluation as Personalizer shows it
    :raises Conflict: an evaluation with this id exists
    :raises InvalidInput: a reversed range, a custom policy HPE cannot evaluate, or no
        evaluable decision in the range (``NoLogsExistInDateRange``)
    """
    now = now or utcnow()
    config = configs.get(session, principal, config_id)
    _check_new(session, config.id, evaluation_id, request)
    settings = settings_of(config)
    arguments = vw_arguments(settings.exploration)
    custom = _custom_policies(request.policies, arguments)
    result = _evaluate(session, config, request)
    document = _document(
        evaluation_id,
        request,
        now,
        description=_description(result, request.optimize),
        value=_policy_results(settings, arguments, custom, result, request.end),
    )
    check_json_document(document, "evaluation")  # NUL or bad Unicode in a name or id
    activities.record(
        session,
        workspace_id=config.workspace_id,
        config_id=config.id,
        type=EVALUATION_CREATED,
        actor=principal.actor,
        data=document,
    )
    return document


def get(session: Session, principal: Principal, config_id: uuid.UUID, evaluation_id: str) -> dict:
    """One evaluation. :raises NotFound: no such evaluation (``EvaluationNotFound``)"""
    config = configs.get(session, principal, config_id)
    found = _current(session, config.id).get(evaluation_id)
    if found is None:
        raise _not_found(evaluation_id)
    return found


def list_all(session: Session, principal: Principal, config_id: uuid.UUID) -> list[dict]:
    """The configuration's evaluations, oldest first, without their ``content``."""
    config = configs.get(session, principal, config_id)
    return [
        {key: value for key, value in document.items() if key != "content"}
        for document in _current(session, config.id).values()
    ]


def delete(
    session: Session, principal: Principal, config_id: uuid.UUID, evaluation_id: str
) -> None:
    """Delete an evaluation (not committed): its deletion is logged.

    :raises NotFound: no such evaluation
    """
    config = configs.get(session, principal, config_id)
    if evaluation_id not in _current(session, config.id):
        raise _not_found(evaluation_id)
    activities.record(
        session,
        workspace_id=config.workspace_id,
        config_id=config.id,
        type=EVALUATION_DELETED,
        actor=principal.actor,
        data={"id": evaluation_id},
    )


def apply(
    session: Session,
    principal: Principal,
    catalog: Catalog,
    config_id: uuid.UUID,
    evaluation_id: str,
    policy_name: str,
) -> None:
    """Use the learning settings of one of an evaluation's policies (not committed).

    :raises NotFound: no such evaluation, or no such policy in it
    :raises InvalidInput: the policy has no learning settings (a baseline)
    """
    document = get(session, principal, config_id, evaluation_id)
    policies = {item["name"]: item for item in document["content"]["value"]}
    chosen = policies.get(policy_name)
    if chosen is None:
        raise coded(
            NotFound(
                f"Evaluation {evaluation_id!r} has no policy {policy_name!r}; it has "
                f"{', '.join(repr(name) for name in policies)}."
            ),
            "LearningSettingsNotFound",
        )
    if not chosen["arguments"]:
        raise invalid(
            POLICY_ERROR,
            f"Policy {policy_name!r} is a baseline: it has no learning settings to apply.",
            "policyName",
        )
    update_policy(session, principal, catalog, config_id, chosen["arguments"])


# --- Steps --------------------------------------------------------------------------------


def _current(session: Session, config_id: uuid.UUID) -> dict[str, dict]:
    """Evaluation id -> its document, for those created and not deleted since."""
    rows = session.execute(
        select(Activity.type, Activity.data)
        .where(
            Activity.config_id == config_id,
            Activity.type.in_((EVALUATION_CREATED, EVALUATION_DELETED)),
        )
        .order_by(Activity.created_at, Activity.id)
    )
    current: dict[str, dict] = {}
    for row in rows:
        if row.type == EVALUATION_CREATED:
            current[row.data["id"]] = row.data
        else:
            current.pop(row.data["id"], None)
    return current


def _check_new(
    session: Session, config_id: uuid.UUID, evaluation_id: str, request: EvaluationRequest
) -> None:
    """:raises Conflict: an evaluation with this id exists
    :raises InvalidInput: an id too short or too long, or a reversed range"""
    _check_id(evaluation_id)
    if evaluation_id in _current(session, config_id):
        raise coded(
            Conflict(f"An evaluation {evaluation_id!r} exists; delete it first."),
            CONTRACT_ERROR,
        )
    if request.end <= request.start:
        raise invalid(CONTRACT_ERROR, "endTime must be after startTime.", "endTime")


def _evaluate(session: Session, config: Config, request: EvaluationRequest) -> Evaluation:
    """The off-policy evaluation of the model and the baseline over the range's UTC days.

    :raises InvalidInput: no evaluable decision in the range (``NoLogsExistInDateRange``)
    """
    result = evaluation.evaluate(
        session,
        config,
        date_from=request.start.astimezone(dt.UTC).date(),
        date_to=request.end.astimezone(dt.UTC).date(),
        policies=(Policy.MODEL, Policy.BASELINE),
    )
    if result.n == 0:
        raise invalid(
            "NoLogsExistInDateRange", result.hint or "No evaluable decisions.", "startTime"
        )
    return result


def _policy_results(
    settings: Settings,
    arguments: str,
    custom: Sequence[tuple[str, str]],
    result: Evaluation,
    end: dt.datetime,
) -> list[dict]:
    """The online policy, the holdout's baseline, then the custom policies (each of which
    is the configuration's own settings, so the model's estimate)."""
    baseline = settings.holdout.baseline_action
    online_name = f"HPE {settings.exploration.algorithm.value}"
    model, holdout = result.policies[Policy.MODEL], result.policies[Policy.BASELINE]
    value = [
        _policy_result(online_name, arguments, "Online", model, end),
        _policy_result(
            f"Baseline ({baseline})" if baseline else "Random",
            "",
            "Baseline" if baseline else "Random",
            holdout,
            end,
        ),
    ]
    value += [_policy_result(name, args, "Custom", model, end) for name, args in custom]
    return value


def _description(result: Evaluation, optimize: bool) -> str:
    """What was evaluated; and, when an optimal policy was asked for, that HPE does not
    search for one."""
    description = (
        f"HPE off-policy evaluation (doubly robust, 95% intervals) of {result.n} logged "
        f"decisions from {result.date_from} to {result.date_to} (UTC days), model version "
        f"{result.model_version or 0}."
    )
    if optimize:
        description += (
            " Policy optimization was asked for: HPE does not search for learning settings "
            "(its recommendations propose exploration changes)."
        )
    return description


def _document(
    evaluation_id: str,
    request: EvaluationRequest,
    now: dt.datetime,
    *,
    description: str,
    value: list[dict],
) -> dict:
    """The evaluation as Personalizer shows it: a finished job with one point for the
    whole range."""
    return {
        "id": evaluation_id,
        "name": request.name,
        "startTime": _iso(request.start),
        "endTime": _iso(request.end),
        "creationTime": _iso(now),
        "status": "Succeeded",
        "evaluationType": "Manual",
        "description": description,
        "optimalPolicy": None,
        "content": {
            "startTime": _iso(request.start),
            "endTime": _iso(request.end),
            "intervalInMinutes": max(1, int((request.end - request.start).total_seconds() // 60)),
            "value": value,
        },
    }


def _custom_policies(policies: Sequence[tuple[str, str]], arguments: str) -> list[tuple[str, str]]:
    """The custom policies, each of which must be the configuration's own settings.

    :raises InvalidInput: a policy with other learning settings, or a repeated name
    """
    names: set[str] = set()
    for name, args in policies:
        if name in names:
            raise invalid(
                "DuplicateCustomPolicyNames", f"Policy name {name!r} is repeated.", "policies"
            )
        names.add(name)
        if vw_arguments(parse_vw_arguments(args)) != arguments:
            raise invalid(
                CONTRACT_ERROR,
                f"Policy {name!r}: HPE evaluates its current learning settings ({arguments}) "
                "and its baseline; it cannot replay training with other settings.",
                "policies",
            )
    return list(policies)


def _policy_result(
    name: str, arguments: str, source: str, estimate: PolicyEstimate, at: dt.datetime
) -> dict:
    interval = [estimate.ci_low, estimate.ci_high] if estimate.ci_low is not None else []
    return {
        "name": name,
        "arguments": arguments,
        "policySource": source,
        "slotId": "",
        "summary": {"expectedReward": estimate.dr, "confidenceInterval": interval},
        "timeseries": {
            "data": [
                {
                    "timeStamp": _iso(at),
                    "expectedReward": estimate.dr,
                    "confidenceInterval": interval,
                }
            ]
        },
    }


def _check_id(evaluation_id: str) -> None:
    if not evaluation_id or len(evaluation_id) > MAX_EVALUATION_ID_LENGTH:
        raise invalid(
            CONTRACT_ERROR,
            f"An evaluation id is 1-{MAX_EVALUATION_ID_LENGTH} characters.",
            "evaluationId",
        )


def _not_found(evaluation_id: str) -> NotFound:
    return coded(NotFound(f"No evaluation {evaluation_id!r}."), "EvaluationNotFound")


def _iso(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")
