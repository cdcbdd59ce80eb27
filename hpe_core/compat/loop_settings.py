"""Personalizer's service configuration and policy, read from and written to settings.

| Personalizer | HPE settings |
|---|---|
| ``rewardWaitTime`` (ISO 8601 duration) | ``reward.wait_seconds`` |
| ``defaultReward`` | ``reward.default`` |
| ``rewardAggregation`` (``earliest``/``sum``) | ``personalizer.reward_aggregation`` |
| ``explorationPercentage`` (0 to 1) | ``exploration.epsilon`` (see below) |
| ``learningMode`` ``Online``/``Apprentice`` | ``automation`` assisted or autonomous / manual |
| ``isAutoOptimizationEnabled`` | ``automation`` autonomous (recommendations applied) |
| ``lastConfigurationEditDate`` | the configuration's ``updated_at`` |
| policy ``arguments`` (VW command line) | ``exploration`` (:func:`parse_vw_arguments`) |

Every write is one validated settings update (as ``PATCH /{id}`` makes it, logged as
``config.updated``). ``explorationPercentage`` is epsilon-greedy's epsilon: changing it on
a configuration that explores with squarecb (which has no such percentage) switches it
to ``epsilon``. ``logRetentionDays`` is always -1 (HPE keeps the decision log; a value
other than -1 is refused), log mirroring cannot be switched on, ``LoggingOnly`` is not a
mode HPE has, and the model export frequency and retrain days are reported, not set.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
import re
import uuid
from collections.abc import Mapping

from sqlalchemy.orm import Session

from hpe_core.compat.errors import coded, flat_messages, invalid
from hpe_core.decide.features import ACTION_NAMESPACE, CONTEXT_NAMESPACE
from hpe_core.decide.policy.exploration import HASH_BITS, vw_arguments
from hpe_core.errors import InvalidInput
from hpe_core.store.models import Config
from hpe_core.tenancy import configs
from hpe_core.tenancy.configs import Catalog, settings_of
from hpe_core.tenancy.settings_types import AutomationLevel, ExplorationAlgorithm
from hpe_core.tenancy.workspaces import Principal

ONLINE = "Online"
APPRENTICE = "Apprentice"
LOGGING_ONLY = "LoggingOnly"
LEARNING_MODES = (ONLINE, APPRENTICE, LOGGING_ONLY)
#: Personalizer's "the logs are never deleted" (HPE's only answer).
KEEP_LOGS = -1
SERVICE_ERROR = "InvalidServiceConfiguration"
POLICY_ERROR = "InvalidPolicyConfiguration"


@dataclasses.dataclass(frozen=True, slots=True)
class ServiceConfiguration:
    """Personalizer's service configuration of one HPE configuration.

    :param model_refresh_seconds: how often models are retrained and swapped in (the
        sweep interval), reported as ``modelExportFrequency``
    """

    reward_wait_seconds: int
    default_reward: float
    reward_aggregation: str
    exploration_percentage: float
    learning_mode: str
    auto_optimization: bool
    last_edit: dt.datetime
    model_refresh_seconds: int
    log_retention_days: int = KEEP_LOGS


@dataclasses.dataclass(frozen=True, slots=True)
class ServiceConfigurationUpdate:
    """A PUT of the service configuration, its shapes checked. None: left as it is.

    :param reward_wait: the ``rewardWaitTime`` text (an ISO 8601 duration, or .NET's
        ``[d.]hh:mm:ss``)
    """

    reward_wait: str
    default_reward: float
    reward_aggregation: str
    exploration_percentage: float
    log_retention_days: int = KEEP_LOGS
    learning_mode: str | None = None
    auto_optimization: bool | None = None
    log_mirror: bool | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class PolicyContract:
    """Personalizer's learning settings: a name and a VW command line."""

    name: str
    arguments: str


# --- Service configuration ----------------------------------------------------------------


def service_configuration(
    session: Session, principal: Principal, config_id: uuid.UUID, *, model_refresh_seconds: int
) -> ServiceConfiguration:
    """The service configuration of a configuration.

    :raises NotFound: unknown configuration, or another workspace's
    """
    config = configs.get(session, principal, config_id)
    return _service_configuration(config, model_refresh_seconds)


def update_service_configuration(
    session: Session,
    principal: Principal,
    catalog: Catalog,
    config_id: uuid.UUID,
    update: ServiceConfigurationUpdate,
    *,
    model_refresh_seconds: int,
) -> ServiceConfiguration:
    """Apply a service configuration as one validated settings update (not committed).

    :raises NotFound: unknown configuration, or another workspace's
    :raises InvalidInput: a value HPE cannot take (with Personalizer's error code)
    """
    config = configs.get(session, principal, config_id)
    settings = settings_of(config)
    if update.log_retention_days != KEEP_LOGS:
        raise invalid(
            "InvalidLogRetentionDays",
            "HPE keeps the decision log (logRetentionDays -1); it has no retention setting.",
            "logRetentionDays",
        )
    if update.log_mirror:
        raise invalid(SERVICE_ERROR, "HPE does not mirror logs.", "logMirrorEnabled")
    patch: dict = {
        "reward": {
            "wait_seconds": parse_duration(update.reward_wait),
            "default": update.default_reward,
        },
        "personalizer": {"reward_aggregation": update.reward_aggregation},
        "automation": _automation(settings.automation, update),
    }
    exploration = settings.exploration
    if not math.isclose(update.exploration_percentage, exploration.epsilon, abs_tol=1e-12):
        patch["exploration"] = {"epsilon": update.exploration_percentage}
        if exploration.algorithm == ExplorationAlgorithm.SQUARECB:
            # squarecb has no exploration percentage: Personalizer's is epsilon-greedy's.
            patch["exploration"]["algorithm"] = ExplorationAlgorithm.EPSILON.value
    config = _update(session, principal, catalog, config_id, patch, SERVICE_ERROR, _SERVICE_NAMES)
    return _service_configuration(config, model_refresh_seconds)


#: Settings paths as a service configuration names them, for error messages.
_SERVICE_NAMES = {
    "reward.wait_seconds": "rewardWaitTime (in seconds)",
    "reward.default": "defaultReward",
    "personalizer.reward_aggregation": "rewardAggregation",
    "exploration.epsilon": "explorationPercentage",
}


def _service_configuration(config: Config, model_refresh_seconds: int) -> ServiceConfiguration:
    settings = settings_of(config)
    return ServiceConfiguration(
        reward_wait_seconds=settings.reward.wait_seconds,
        default_reward=settings.reward.default,
        reward_aggregation=settings.personalizer.reward_aggregation.value,
        exploration_percentage=settings.exploration.epsilon,
        learning_mode=APPRENTICE if settings.automation == AutomationLevel.MANUAL else ONLINE,
        auto_optimization=settings.automation == AutomationLevel.AUTONOMOUS,
        last_edit=config.updated_at,
        model_refresh_seconds=model_refresh_seconds,
    )


def _automation(current: AutomationLevel, update: ServiceConfigurationUpdate) -> str:
    """The automation level for a learning mode and auto-optimization flag (None: as now)."""
    mode = update.learning_mode or (APPRENTICE if current == AutomationLevel.MANUAL else ONLINE)
    auto = (
        update.auto_optimization
        if update.auto_optimization is not None
        else current == AutomationLevel.AUTONOMOUS
    )
    if mode == LOGGING_ONLY:
        raise invalid(
            "InvalidLearningModeServiceConfiguration",
            "HPE has no LoggingOnly mode: use Apprentice (everyone gets the baseline and "
            "the model learns in the background) or Online.",
            "learningMode",
        )
    if mode not in LEARNING_MODES:
        raise invalid(
            "InvalidLearningModeServiceConfiguration",
            f"learningMode must be {ONLINE} or {APPRENTICE}.",
            "learningMode",
        )
    if mode == APPRENTICE:
        if auto:
            raise invalid(
                SERVICE_ERROR,
                "Auto-optimization needs learningMode Online (in HPE: automation autonomous).",
                "isAutoOptimizationEnabled",
            )
        return AutomationLevel.MANUAL.value
    return (AutomationLevel.AUTONOMOUS if auto else AutomationLevel.ASSISTED).value


# --- Policy -------------------------------------------------------------------------------


def policy(session: Session, principal: Principal, config_id: uuid.UUID) -> PolicyContract:
    """The learning settings of a configuration: its exploration as VW arguments.

    :raises NotFound: unknown configuration, or another workspace's
    """
    return _policy(configs.get(session, principal, config_id))


def update_policy(
    session: Session,
    principal: Principal,
    catalog: Catalog,
    config_id: uuid.UUID,
    arguments: str,
) -> PolicyContract:
    """Set the exploration settings from a VW command line (not committed).

    Personalizer's policy name is not kept: the answer names the policy after HPE's
    algorithm.

    :raises InvalidInput: an argument HPE does not take, or a value out of range
    """
    configs.get(session, principal, config_id)
    exploration = parse_vw_arguments(arguments)
    return _policy(
        _update(session, principal, catalog, config_id, {"exploration": exploration}, POLICY_ERROR)
    )


def reset_policy(
    session: Session, principal: Principal, catalog: Catalog, config_id: uuid.UUID
) -> PolicyContract:
    """Reset the exploration settings to HPE's defaults (not committed)."""
    configs.get(session, principal, config_id)
    return _policy(
        _update(session, principal, catalog, config_id, {"exploration": None}, POLICY_ERROR)
    )


def _policy(config: Config) -> PolicyContract:
    exploration = settings_of(config).exploration
    return PolicyContract(
        name=f"HPE {exploration.algorithm.value}", arguments=vw_arguments(exploration)
    )


#: Flags HPE fixes for every configuration, with the one value each may have.
_FIXED = {
    "--cb_type": "mtr",
    "-b": str(HASH_BITS),
    "--bit_precision": str(HASH_BITS),
    "-q": CONTEXT_NAMESPACE + ACTION_NAMESPACE,
    "--quadratic": CONTEXT_NAMESPACE + ACTION_NAMESPACE,
}
_NUMBERS = {
    "--epsilon": "epsilon",
    "--gamma_scale": "gamma_scale",
    "-l": "learning_rate",
    "--learning_rate": "learning_rate",
    "--power_t": "power_t",
}
_COUNTS = {"--bag": "bag_size", "--cover": "cover_size"}
_SWITCHES = {"--cb_explore_adf", "--quiet", "--squarecb"}


def parse_vw_arguments(arguments: str) -> dict:
    """An ``exploration`` settings block from a VW command line, as HPE can serve it.

    HPE takes ``--cb_explore_adf`` with one exploration algorithm (``--squarecb
    [--gamma_scale G]``, ``--epsilon E``, ``--bag N``, ``--cover N``; bag and cover may give
    ``--epsilon``), ``-l``/``--learning_rate`` and ``--power_t``; and the flags it fixes with
    their fixed values (``--cb_type mtr``, ``-b 18``, ``-q ca``, ``--quiet``). Values are
    checked by the settings schema when the block is saved.

    :raises InvalidInput: any other argument, a repeated one, or a missing value
    """
    tokens = _tokens(arguments)
    if "--cb_explore_adf" not in tokens:
        raise invalid(
            POLICY_ERROR, "HPE's policies are --cb_explore_adf policies: include it.", "arguments"
        )
    values: dict = {}
    switches: set[str] = set()
    position = 0
    while position < len(tokens):
        token = tokens[position]
        if token in _SWITCHES:
            switches.add(token)
            position += 1
            continue
        if token not in _FIXED and token not in _NUMBERS and token not in _COUNTS:
            raise invalid(POLICY_ERROR, _unsupported(token), "arguments")
        if position + 1 >= len(tokens):
            raise invalid(POLICY_ERROR, f"{token} needs a value.", "arguments")
        value = tokens[position + 1]
        position += 2
        if token in _FIXED:
            if value != _FIXED[token]:
                raise invalid(
                    POLICY_ERROR,
                    f"HPE always uses {token} {_FIXED[token]}; {token} {value} is not supported.",
                    "arguments",
                )
            continue
        key = _NUMBERS.get(token) or _COUNTS[token]
        if key in values:
            raise invalid(POLICY_ERROR, f"{token} is given twice.", "arguments")
        values[key] = _number(token, value, whole=token in _COUNTS)
    return _exploration(values, switches)


def _exploration(values: dict, switches: set[str]) -> dict:
    """The block for the algorithm the flags name (VW's default is epsilon-greedy)."""
    algorithms = [
        name
        for name, on in (
            (ExplorationAlgorithm.SQUARECB, "--squarecb" in switches),
            (ExplorationAlgorithm.BAG, "bag_size" in values),
            (ExplorationAlgorithm.COVER, "cover_size" in values),
        )
        if on
    ]
    if len(algorithms) > 1:
        raise invalid(
            POLICY_ERROR,
            f"Give one exploration algorithm, not {' and '.join(a.value for a in algorithms)}.",
            "arguments",
        )
    algorithm = algorithms[0] if algorithms else ExplorationAlgorithm.EPSILON
    if "gamma_scale" in values and algorithm != ExplorationAlgorithm.SQUARECB:
        raise invalid(POLICY_ERROR, "--gamma_scale goes with --squarecb.", "arguments")
    if "epsilon" in values and algorithm == ExplorationAlgorithm.SQUARECB:
        raise invalid(POLICY_ERROR, "--squarecb explores without --epsilon.", "arguments")
    if algorithm == ExplorationAlgorithm.EPSILON:
        values.setdefault("epsilon", 0.05)  # VW's default for --cb_explore_adf
    return {"algorithm": algorithm.value, **values}


def _tokens(arguments: str) -> list[str]:
    tokens = []
    for token in arguments.split():
        # --epsilon=0.2 is --epsilon 0.2 to VW's option parser.
        if token.startswith("--") and "=" in token:
            tokens += token.split("=", 1)
        else:
            tokens.append(token)
    return tokens


def _number(flag: str, text: str, *, whole: bool) -> float | int:
    try:
        value = int(text) if whole else float(text)
    except ValueError:
        kind = "a whole number" if whole else "a number"
        raise invalid(POLICY_ERROR, f"{flag} needs {kind}, not {text!r}.", "arguments") from None
    if not math.isfinite(value):
        raise invalid(POLICY_ERROR, f"{flag} needs a finite number.", "arguments")
    return value


def _unsupported(token: str) -> str:
    return (
        f"HPE does not take the VW argument {token!r}. It takes --cb_explore_adf with "
        "--squarecb [--gamma_scale G], --epsilon E, --bag N or --cover N, and -l/--learning_rate, "
        "--power_t; --cb_type mtr, -b 18, -q ca and --quiet are fixed."
    )


# --- Durations ----------------------------------------------------------------------------

_ISO_DURATION = re.compile(
    r"P(?:(?P<weeks>\d+(?:\.\d+)?)W)?(?:(?P<days>\d+(?:\.\d+)?)D)?"
    r"(?:T(?:(?P<hours>\d+(?:\.\d+)?)H)?(?:(?P<minutes>\d+(?:\.\d+)?)M)?"
    r"(?:(?P<seconds>\d+(?:\.\d+)?)S)?)?",
    re.IGNORECASE,
)
_TIMESPAN = re.compile(
    r"(?:(?P<days>\d+)\.)?(?P<hours>\d+):(?P<minutes>\d+):(?P<seconds>\d+(?:\.\d+)?)"
)
_UNIT_SECONDS = {"weeks": 604800, "days": 86400, "hours": 3600, "minutes": 60, "seconds": 1}


def parse_duration(text: str) -> int:
    """Whole seconds of an ISO 8601 duration (``PT10M``, ``P1D``, ``PT1H30M``) or a .NET
    time span (``00:10:00``, ``1.00:00:00``), as Personalizer's durations are written.

    :raises InvalidInput: neither, or not a whole number of seconds
    """
    match = _ISO_DURATION.fullmatch(text.strip()) or _TIMESPAN.fullmatch(text.strip())
    if match is None or not any(match.groupdict().values()) or text.strip().upper() in ("P", "PT"):
        raise invalid(
            "InvalidRewardWaitTime",
            f"rewardWaitTime {text!r} is not a duration: use ISO 8601, e.g. PT10M or P1D.",
            "rewardWaitTime",
        )
    seconds = sum(
        float(value) * _UNIT_SECONDS[unit]
        for unit, value in match.groupdict().items()
        if value is not None
    )
    if not seconds.is_integer():
        raise invalid(
            "InvalidRewardWaitTime",
            "HPE counts the reward wait time in whole seconds.",
            "rewardWaitTime",
        )
    return int(seconds)


def format_duration(seconds: int) -> str:
    """An ISO 8601 duration: ``P1DT2H``, ``PT10M``, ``PT5S``."""
    days, rest = divmod(int(seconds), 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    time = "".join(f"{n}{unit}" for n, unit in ((hours, "H"), (minutes, "M"), (secs, "S")) if n)
    text = "P" + (f"{days}D" if days else "") + (f"T{time}" if time else "")
    return text if text != "P" else "PT0S"


# --- Shared -------------------------------------------------------------------------------


def _update(
    session: Session,
    principal: Principal,
    catalog: Catalog,
    config_id: uuid.UUID,
    patch: Mapping,
    code: str,
    names: Mapping[str, str] | None = None,
) -> Config:
    """One validated settings update; the schema's refusal told in Personalizer's terms.

    :param names: settings paths -> the field names the caller sent
    """
    try:
        return configs.update(session, principal, catalog, config_id, settings_patch=dict(patch))
    except InvalidInput as exc:
        messages = flat_messages(exc.errors.get("settings", exc.errors))
        names = names or {}
        detail = "; ".join(f"{names.get(path, path)}: {message}" for path, message in messages[:5])
        raise coded(InvalidInput(f"{exc.message} {detail}".strip(), exc.errors), code) from exc
