"""Azure AI Personalizer's REST API (api-version 2022-09-01-preview) on a configuration.

A client built with ``endpoint = "http(s)://HOST/compat/<config_id>"`` and an HPE API key
as its subscription key (``Ocp-Apim-Subscription-Key``) works unchanged: the
configuration is the Personalizer loop, and the workspace comes from the key (another
workspace's configuration answers 404). Every route parses Personalizer's JSON, calls a
service of :mod:`hpe_core.compat` and answers Personalizer's JSON, or its error shape
(:mod:`web.compat.errors`). The older path-versioned routes (``/personalizer/v1.0/rank``,
``/personalizer/v1.1-preview.3/...``) lead to the same views.

Every route takes a secret key, as Personalizer's keys were secret: a publishable key (one
that sits in web pages) could forge rewards. docs/personalizer.md is the migration guide.
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Callable

from flask import Blueprint, Response, current_app, g, jsonify, request

from hpe_core.compat import evaluations, feedback, loop_settings, model_files, ranking
from hpe_core.compat.errors import NotSupported, invalid
from hpe_core.compat.features import context_of, flat_features
from hpe_core.errors import Forbidden, NotFound, Unauthorized
from hpe_core.store.vocabulary import KeyKind
from hpe_core.tenancy.settings_types import RewardAggregation
from hpe_core.tenancy.workspaces import Principal, authenticate
from web.compat import errors
from web.compat.parsing import (
    boolean,
    field,
    flag,
    integer,
    json_body,
    number,
    objects,
    query_integer,
    string,
    strings,
    timestamp,
)
from web.extensions import app_runtime, app_state, catalog, db_session

bp = Blueprint("personalizer", __name__, url_prefix="/compat")
errors.register(bp)

#: Where a configuration's Personalizer routes start, and the older path-versioned forms.
_PREFIXES = (
    "/<uuid:config_id>/personalizer",
    "/<uuid:config_id>/personalizer/<any('v1.0','v1.1-preview.1','v1.1-preview.2',"
    "'v1.1-preview.3'):path_version>",
)
KEY_HEADER = "Ocp-Apim-Subscription-Key"
RANK = "InvalidRankRequest"
REWARD = "InvalidRewardRequest"
ACTIVATE = "InvalidEventIdToActivate"
SERVICE = "InvalidServiceConfiguration"
POLICY = "InvalidPolicyConfiguration"
EVALUATION = "InvalidEvaluationContract"
MODEL = "InvalidModelImportFormat"


@bp.before_request
def _authenticate() -> None:
    """The key in ``Ocp-Apim-Subscription-Key`` (or ``Authorization: Bearer``)."""
    key = request.headers.get(KEY_HEADER, "").strip()
    if not key:
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        key = token.strip() if scheme.lower() == "bearer" else ""
    if not key:
        raise Unauthorized(
            f"Access denied: give an HPE API key in the {KEY_HEADER} header.",
        )
    g.principal = authenticate(db_session(), key)


def _principal() -> Principal:
    return g.principal


def _route(rule: str, methods: list[str], *, code: str = "BadRequest"):
    """Register a view under every prefix; set its error code; check the key's kind and
    the configuration."""

    def register(view: Callable) -> Callable:
        @functools.wraps(view)
        def wrapped(config_id: uuid.UUID, path_version: str | None = None, **kwargs):
            setattr(g, errors.ROUTE_CODE, code)
            # Personalizer's keys were secret, and a Reward sets a value HPE learns from:
            # a publishable key (public, in web pages) could forge them.
            if _principal().kind != KeyKind.SECRET:
                raise Forbidden(
                    "The Personalizer routes take a secret key; this one is publishable."
                )
            # An unknown configuration (or another workspace's) is a 404 before any body
            # is read; the snapshot is the decision engine's cached one.
            _engine().snapshot(db_session(), _principal(), config_id)
            return view(config_id, **kwargs)

        for prefix in _PREFIXES:
            bp.add_url_rule(prefix + rule, view.__name__, wrapped, methods=methods)
        return wrapped

    return register


def _no_content() -> Response:
    return Response(status=204)


# --- Rank, Reward, Activate ---------------------------------------------------------------


@_route("/rank", ["POST"], code=RANK)
def rank(config_id: uuid.UUID):
    """Rank: choose one of the actions for the context, logged as a decision."""
    body = json_body(RANK)
    request_ = ranking.RankRequest(
        context=context_of(field(body, "contextFeatures")),
        actions=_actions(body),
        excluded=tuple(strings(body, "excludedActions", RANK)),
        event_id=string(body, "eventId", RANK),
        defer=bool(boolean(body, "deferActivation", RANK)),
    )
    result = ranking.rank(
        db_session(), app_state().touchpoints, catalog(), _principal(), config_id, request_
    )
    response = jsonify(
        {
            "ranking": [{"id": a, "probability": p} for a, p in result.ranking],
            "eventId": result.event_id,
            "rewardActionId": result.reward_action_id,
        }
    )
    response.status_code = 201
    _hpe_headers(response, result.variant, result.reason, result.replayed)
    return response


@_route("/events/<path:event_id>/reward", ["POST"], code=REWARD)
def reward(config_id: uuid.UUID, event_id: str):
    """Reward: the reward of a single-slot event."""
    value = number(json_body(REWARD), "value", REWARD, required=True)
    session = db_session()
    feedback.reward(session, _engine(), _principal(), config_id, event_id, value)
    session.commit()
    return _no_content()


@_route("/events/<path:event_id>/activate", ["POST"], code=ACTIVATE)
def activate(config_id: uuid.UUID, event_id: str):
    """Activate: a deferred single-slot event was shown; count and learn it."""
    session = db_session()
    feedback.activate(session, _engine(), _principal(), config_id, event_id)
    session.commit()
    return _no_content()


@_route("/multislot/rank", ["POST"], code=RANK)
def rank_multi_slot(config_id: uuid.UUID):
    """Multi-slot Rank: one different action per slot, each slot a logged decision."""
    body = json_body(RANK)
    slots = []
    for index, slot in enumerate(objects(body, "slots", RANK, required=True)):
        target = f"slots[{index}]"
        slots.append(
            ranking.Slot(
                id=_text(string(slot, "id", RANK, required=True), f"{target}.id"),
                baseline=_text(
                    string(slot, "baselineAction", RANK, required=True),
                    f"{target}.baselineAction",
                ),
                features=context_of(field(slot, "features")),
                excluded=tuple(strings(slot, "excludedActions", RANK)),
            )
        )
    request_ = ranking.MultiSlotRequest(
        context=context_of(field(body, "contextFeatures")),
        actions=_actions(body),
        slots=tuple(slots),
        event_id=string(body, "eventId", RANK),
        defer=bool(boolean(body, "deferActivation", RANK)),
    )
    result = ranking.rank_slots(
        db_session(), app_state().touchpoints, catalog(), _principal(), config_id, request_
    )
    response = jsonify(
        {
            "slots": [
                {"id": s.slot_id, "rewardActionId": s.reward_action_id} for s in result.slots
            ],
            "eventId": result.event_id,
        }
    )
    response.status_code = 201
    if result.replayed:
        response.headers["X-HPE-Replayed"] = "true"
    return response


@_route("/multislot/events/<path:event_id>/reward", ["POST"], code=REWARD)
def reward_multi_slot(config_id: uuid.UUID, event_id: str):
    """Multi-slot Reward: rewards for slots of an event."""
    rewards = []
    for index, item in enumerate(objects(json_body(REWARD), "reward", REWARD, required=True)):
        slot_id = string(item, "slotId", REWARD, required=True)
        value = number(item, "value", REWARD, required=True)
        rewards.append((_text(slot_id, f"reward[{index}].slotId"), value))
    session = db_session()
    feedback.reward_slots(session, _engine(), _principal(), config_id, event_id, rewards)
    session.commit()
    return _no_content()


@_route("/multislot/events/<path:event_id>/activate", ["POST"], code=ACTIVATE)
def activate_multi_slot(config_id: uuid.UUID, event_id: str):
    """Multi-slot Activate: every slot of a deferred event was shown."""
    session = db_session()
    feedback.activate_slots(session, _engine(), _principal(), config_id, event_id)
    session.commit()
    return _no_content()


# --- Service configuration and policy -----------------------------------------------------


@_route("/configurations/service", ["GET"], code=SERVICE)
def get_service_configuration(config_id: uuid.UUID):
    """The service configuration, read from the settings."""
    found = loop_settings.service_configuration(
        db_session(), _principal(), config_id, model_refresh_seconds=_refresh_seconds()
    )
    return jsonify(_service_json(found))


@_route("/configurations/service", ["PUT"], code=SERVICE)
def update_service_configuration(config_id: uuid.UUID):
    """Update the service configuration: one validated settings update."""
    body = json_body(SERVICE)
    aggregation = (string(body, "rewardAggregation", SERVICE, required=True) or "").lower()
    if aggregation not in tuple(RewardAggregation):
        raise invalid(SERVICE, "rewardAggregation must be earliest or sum.", "rewardAggregation")
    update = loop_settings.ServiceConfigurationUpdate(
        reward_wait=string(body, "rewardWaitTime", SERVICE, required=True),
        default_reward=number(body, "defaultReward", SERVICE, required=True),
        reward_aggregation=aggregation,
        exploration_percentage=number(body, "explorationPercentage", SERVICE, required=True),
        log_retention_days=integer(
            body, "logRetentionDays", SERVICE, default=loop_settings.KEEP_LOGS
        ),
        learning_mode=string(body, "learningMode", SERVICE),
        auto_optimization=boolean(body, "isAutoOptimizationEnabled", SERVICE),
        log_mirror=boolean(body, "logMirrorEnabled", SERVICE),
    )
    session = db_session()
    found = loop_settings.update_service_configuration(
        session,
        _principal(),
        catalog(),
        config_id,
        update,
        model_refresh_seconds=_refresh_seconds(),
    )
    session.commit()
    _engine().invalidate(config_id)
    return jsonify(_service_json(found))


@_route("/configurations/policy", ["GET"], code=POLICY)
def get_policy(config_id: uuid.UUID):
    """The learning settings: the exploration settings as a VW command line."""
    return jsonify(_policy_json(loop_settings.policy(db_session(), _principal(), config_id)))


@_route("/configurations/policy", ["PUT"], code=POLICY)
def update_policy(config_id: uuid.UUID):
    """Set the exploration settings from a VW command line."""
    body = json_body(POLICY)
    string(body, "name", POLICY)
    arguments = string(body, "arguments", POLICY, required=True)
    session = db_session()
    found = loop_settings.update_policy(session, _principal(), catalog(), config_id, arguments)
    session.commit()
    _engine().invalidate(config_id)
    return jsonify(_policy_json(found))


@_route("/configurations/policy", ["DELETE"], code=POLICY)
def reset_policy(config_id: uuid.UUID):
    """Reset the exploration settings to HPE's defaults."""
    session = db_session()
    found = loop_settings.reset_policy(session, _principal(), catalog(), config_id)
    session.commit()
    _engine().invalidate(config_id)
    return jsonify(_policy_json(found))


@_route("/configurations/applyFromEvaluation", ["POST"], code=POLICY)
def apply_from_evaluation(config_id: uuid.UUID):
    """Use the learning settings of a policy of an evaluation."""
    body = json_body(POLICY)
    evaluation_id = string(body, "evaluationId", POLICY, required=True)
    policy_name = string(body, "policyName", POLICY, required=True)
    session = db_session()
    evaluations.apply(session, _principal(), catalog(), config_id, evaluation_id, policy_name)
    session.commit()
    _engine().invalidate(config_id)
    return _no_content()


# --- Evaluations --------------------------------------------------------------------------


@_route("/evaluations", ["GET"], code=EVALUATION)
def list_evaluations(config_id: uuid.UUID):
    """The evaluations, oldest first (``top`` and ``skip`` page them)."""
    skip = query_integer("skip", EVALUATION, default=0, minimum=0)
    top = query_integer("top", EVALUATION, default=None, minimum=1)
    found = evaluations.list_all(db_session(), _principal(), config_id)
    page = found[skip : skip + top] if top is not None else found[skip:]
    answer: dict = {"value": page}
    if top is not None and skip + top < len(found):
        answer["nextLink"] = f"{request.base_url}?skip={skip + top}&top={top}"
    return jsonify(answer)


@_route("/evaluations/<path:evaluation_id>", ["PUT"], code=EVALUATION)
def create_evaluation(config_id: uuid.UUID, evaluation_id: str):
    """Run an offline evaluation now and keep it."""
    body = json_body(EVALUATION)
    policies = []
    for index, policy in enumerate(objects(body, "policies", EVALUATION)):
        policies.append(
            (
                _text(string(policy, "name", EVALUATION, required=True), f"policies[{index}].name"),
                string(policy, "arguments", EVALUATION, required=True),
            )
        )
    request_ = evaluations.EvaluationRequest(
        name=_text(string(body, "name", EVALUATION, required=True), "name"),
        start=timestamp(field(body, "startTime"), "startTime", EVALUATION),
        end=timestamp(field(body, "endTime"), "endTime", EVALUATION),
        optimize=bool(boolean(body, "enablePolicyOptimization", EVALUATION)),
        policies=tuple(policies),
    )
    session = db_session()
    document = evaluations.create(session, _principal(), config_id, evaluation_id, request_)
    session.commit()
    return jsonify(document)


@_route("/evaluations/<path:evaluation_id>", ["GET"], code=EVALUATION)
def get_evaluation(config_id: uuid.UUID, evaluation_id: str):
    """One evaluation, as it was computed (``startTime``/``endTime`` are not needed)."""
    return jsonify(evaluations.get(db_session(), _principal(), config_id, evaluation_id))


@_route("/evaluations/<path:evaluation_id>", ["DELETE"], code=EVALUATION)
def delete_evaluation(config_id: uuid.UUID, evaluation_id: str):
    session = db_session()
    evaluations.delete(session, _principal(), config_id, evaluation_id)
    session.commit()
    return _no_content()


# --- Model and logs -----------------------------------------------------------------------


@_route("/model", ["GET"], code=MODEL)
def export_model(config_id: uuid.UUID):
    """The current model: VW's bytes, or a signed zip with ``signed=true``."""
    found = model_files.export(
        db_session(),
        _principal(),
        config_id,
        signed=flag("signed", MODEL),
        secret_key=current_app.config["SECRET_KEY"],
    )
    response = Response(found.data, status=200, mimetype="application/octet-stream")
    response.headers["X-HPE-Model-Version"] = str(found.version)
    return response


@_route("/model", ["PUT"], code=MODEL)
def import_model(config_id: uuid.UUID):
    """Replace the model with a signed export (a new model version)."""
    session = db_session()
    model_files.import_model(
        session,
        _principal(),
        config_id,
        request.get_data(),
        secret_key=current_app.config["SECRET_KEY"],
    )
    session.commit()
    _engine().models.reload(config_id)
    return _no_content()


@_route("/model", ["DELETE"], code=MODEL)
def reset_model(config_id: uuid.UUID):
    """Start again from an untrained model (a new model version; rollback stays possible)."""
    session = db_session()
    model_files.reset(session, _principal(), config_id)
    session.commit()
    _engine().models.reload(config_id)
    return _no_content()


@_route("/model/properties", ["GET"], code=MODEL)
def model_properties(config_id: uuid.UUID):
    times = model_files.model_times(db_session(), _principal(), config_id)
    return jsonify({"creationTime": _iso(times.first), "lastModifiedTime": _iso(times.last)})


@_route("/logs/properties", ["GET"])
def log_properties(config_id: uuid.UUID):
    times = model_files.log_times(db_session(), _principal(), config_id)
    return jsonify({"dateRange": {"from": _iso(times.first), "to": _iso(times.last)}})


@_route("/logs", ["DELETE"])
def delete_logs(config_id: uuid.UUID):
    raise NotSupported(
        "HPE keeps the decision log: its metrics, evaluation and learning are built on it. "
        "Deleting it is not supported (docs/personalizer.md)."
    )


@_route("/featureImportances", ["GET"])
def list_feature_importances(config_id: uuid.UUID):
    raise _no_feature_importances()


@_route("/featureImportances/<path:feature_importance_id>", ["GET", "PUT", "DELETE"])
def feature_importance(config_id: uuid.UUID, feature_importance_id: str):
    raise _no_feature_importances()


@bp.route("/<path:rest>", methods=["GET", "POST", "PUT", "PATCH", "DELETE"])
def unknown(rest: str):
    """Any other path under /compat: Personalizer's 404, not HPE's."""
    raise NotFound(
        f"No Personalizer operation {request.method} /compat/{rest}. The endpoint is "
        "http(s)://HOST/compat/<configuration id>; see docs/personalizer.md."
    )


# --- Helpers ------------------------------------------------------------------------------


def _engine():
    return app_runtime().decisions


def _refresh_seconds() -> int:
    return max(1, round(float(current_app.config.get("SWEEP_INTERVAL", 1.0))))


def _no_feature_importances() -> NotSupported:
    return NotSupported(
        "HPE does not compute feature importances. Its off-policy evaluation (evaluations) "
        "and its metrics per action and segment are the closest (docs/personalizer.md)."
    )


def _actions(body: dict) -> tuple[ranking.RankAction, ...]:
    actions = []
    for index, action in enumerate(objects(body, "actions", RANK, required=True)):
        target = f"actions[{index}]"
        action_id = _text(string(action, "id", RANK, required=True), f"{target}.id")
        features = flat_features(field(action, "features"), target=f"{target}.features")
        actions.append(ranking.RankAction(action_id, features))
    return tuple(actions)


def _text(value: str | None, target: str) -> str:
    """A non-empty id of at most 256 characters."""
    if not value or len(value) > 256:
        raise invalid(
            g.get(errors.ROUTE_CODE, "BadRequest"), f"{target} must be 1-256 characters.", target
        )
    return value


def _hpe_headers(response: Response, variant, reason, replayed: bool) -> None:
    """What HPE decided, for people reading traffic (Personalizer's JSON stays as it is)."""
    if variant is not None:
        response.headers["X-HPE-Variant"] = str(variant)
    if reason is not None:
        response.headers["X-HPE-Reason"] = str(reason)
    if replayed:
        response.headers["X-HPE-Replayed"] = "true"


def _service_json(found: loop_settings.ServiceConfiguration) -> dict:
    return {
        "rewardWaitTime": loop_settings.format_duration(found.reward_wait_seconds),
        "defaultReward": found.default_reward,
        "rewardAggregation": found.reward_aggregation,
        "explorationPercentage": found.exploration_percentage,
        "modelExportFrequency": loop_settings.format_duration(found.model_refresh_seconds),
        "modelRetrainDays": 0,
        "logMirrorEnabled": False,
        "logRetentionDays": found.log_retention_days,
        "lastConfigurationEditDate": _iso(found.last_edit),
        "learningMode": found.learning_mode,
        "isAutoOptimizationEnabled": found.auto_optimization,
    }


def _policy_json(found: loop_settings.PolicyContract) -> dict:
    return {"name": found.name, "arguments": found.arguments}


def _iso(moment) -> str | None:
    if moment is None:
        return None
    return moment.isoformat().replace("+00:00", "Z")
