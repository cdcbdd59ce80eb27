"""Configurations: create, read, update (JSON merge patch), deactivate — each change logged."""

from __future__ import annotations

import datetime as dt
import threading
import uuid
from collections import OrderedDict
from collections.abc import Iterable

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from hpe_core.errors import InvalidInput, NotFound
from hpe_core.store.models import Config
from hpe_core.store.vocabulary import ConfigStatus
from hpe_core.tenancy import activities
from hpe_core.tenancy.merge_patch import diff
from hpe_core.tenancy.settings import (
    ATTRIBUTION_MODELS,
    BUILTIN_CHANNELS,
    check_json_document,
    merge_settings_patch,
    normalize_stored_settings,
    text_problem,
    validate_settings,
)
from hpe_core.tenancy.settings_types import Settings
from hpe_core.tenancy.workspaces import Principal

MAX_NAME_LENGTH = 200


class Catalog:
    """What the installed plugins offer, which settings are validated against."""

    def __init__(
        self,
        channels: Iterable[str] = BUILTIN_CHANNELS,
        attribution_models: Iterable[str] = ATTRIBUTION_MODELS,
    ):
        self.channels = tuple(channels)
        self.attribution_models = tuple(attribution_models)

    def validate(self, settings: object) -> dict:
        return validate_settings(
            settings, channels=self.channels, attribution_models=self.attribution_models
        )


def _check_name(name: object) -> str:
    if not isinstance(name, str) or not name.strip():
        raise InvalidInput("A name is required.", {"name": ["Must be a non-empty string."]})
    if len(name) > MAX_NAME_LENGTH:
        raise InvalidInput("Name too long.", {"name": [f"At most {MAX_NAME_LENGTH} characters."]})
    problem = text_problem(name)
    if problem is None and any(ord(c) < 32 or ord(c) == 127 for c in name):
        problem = "A name is one line of text: no control characters."
    if problem:
        raise InvalidInput(f"Invalid name: {problem}", {"name": [problem]})
    return name.strip()


def _check_status(status: object) -> str:
    if status not in list(ConfigStatus):
        raise InvalidInput(
            "Invalid status.", {"status": [f"Must be one of: {', '.join(ConfigStatus)}."]}
        )
    return status


def create(
    session: Session,
    principal: Principal,
    catalog: Catalog,
    *,
    name: str,
    settings: dict,
    status: str = "ACTIVE",
) -> Config:
    """Create a configuration in the caller's workspace and log it.

    :raises InvalidInput: with per-field messages if name, status or settings are invalid
    """
    config = Config(
        id=uuid.uuid4(),
        workspace_id=principal.workspace_id,
        name=_check_name(name),
        status=_check_status(status),
        settings=catalog.validate(settings),
    )
    session.add(config)
    session.flush()  # the activity row references the config row
    activities.record(
        session,
        workspace_id=config.workspace_id,
        config_id=config.id,
        type=activities.CONFIG_CREATED,
        actor=principal.actor,
        data={"name": config.name, "status": config.status, "settings": config.settings},
    )
    session.flush()
    return config


def query(session: Session, principal: Principal, *, status: str | None = None) -> Select:
    """The caller's configurations, newest first, optionally with one status."""
    statement = select(Config).where(Config.workspace_id == principal.workspace_id)
    if status is not None:
        statement = statement.where(Config.status == _check_status(status))
    return statement.order_by(Config.created_at.desc(), Config.id)


def get(session: Session, principal: Principal, config_id: uuid.UUID) -> Config:
    """One configuration of the caller's workspace.

    :raises NotFound: if it does not exist or belongs to another workspace (indistinguishable)
    """
    config = session.get(Config, config_id)
    if config is None or config.workspace_id != principal.workspace_id:
        raise NotFound(f"No configuration {config_id}.")
    return config


_UNSET = object()


def update(
    session: Session,
    principal: Principal,
    catalog: Catalog,
    config_id: uuid.UUID,
    *,
    name: object = _UNSET,
    status: object = _UNSET,
    settings_patch: object = _UNSET,
) -> Config:
    """Change name, status and/or settings; settings take a JSON merge patch.

    The patched settings are validated whole before anything is written, so an invalid
    patch leaves the configuration as it was. ``null`` in the patch resets a key to its
    default.
    """
    config = get(session, principal, config_id)
    before = {"name": config.name, "settings": config.settings}
    new_name = config.name if name is _UNSET else _check_name(name)
    new_status = config.status if status is _UNSET else _check_status(status)
    new_settings = config.settings
    if settings_patch is not _UNSET:
        if not isinstance(settings_patch, dict):
            raise InvalidInput(
                "Settings must be a JSON object (a merge patch).",
                {"settings": ["Must be an object."]},
            )
        check_json_document(settings_patch)  # before merging: merging recurses
        new_settings = catalog.validate(merge_settings_patch(config.settings, settings_patch))

    changes = diff(before, {"name": new_name, "settings": new_settings})
    if changes:
        config.name, config.settings = new_name, new_settings
        activities.record(
            session,
            workspace_id=config.workspace_id,
            config_id=config.id,
            type=activities.CONFIG_UPDATED,
            actor=principal.actor,
            data={"changes": changes},
        )
    if new_status != config.status:
        _set_status(session, principal, config, new_status)
    session.flush()
    return config


def deactivate(session: Session, principal: Principal, config_id: uuid.UUID) -> Config:
    """Set status INACTIVE. Nothing is deleted: decisions, activities and metrics stay."""
    config = get(session, principal, config_id)
    if config.status != "INACTIVE":
        _set_status(session, principal, config, "INACTIVE")
    session.flush()
    return config


def _set_status(session: Session, principal: Principal, config: Config, status: str) -> None:
    activities.record(
        session,
        workspace_id=config.workspace_id,
        config_id=config.id,
        type=activities.CONFIG_STATUS_CHANGED,
        actor=principal.actor,
        data={"from": config.status, "to": status},
    )
    config.status = status


def measured_ids(session: Session) -> list[uuid.UUID]:
    """Configurations the measurement pass covers: every one not INACTIVE."""
    return list(session.scalars(select(Config.id).where(Config.status != ConfigStatus.INACTIVE)))


# --- Reading a stored configuration's settings, once per version -------------------------

_CACHE_SIZE = 1024
_cache: OrderedDict[tuple[uuid.UUID, dt.datetime | None], Settings] = OrderedDict()
_cache_lock = threading.Lock()


def settings_of(config) -> Settings:
    """The typed settings of a configuration (:class:`~hpe_core.store.models.Config`).

    Parsed once per settings version and shared: a configuration loaded unchanged from
    the database is looked up by ``(id, updated_at)`` (the measurement pass, the learner
    and the decision engine share one parse per change); one whose settings were just
    assigned in this session is parsed from that document (and remembered on the
    instance until it is assigned again). A document stored by an older HPE is read
    through the schema first, so blocks it lacks get their defaults (without re-checking
    its channels against today's plugins).
    """
    document = config.settings
    remembered = config.__dict__.get(_INSTANCE_KEY)
    if remembered is not None and remembered[0] is document:
        return remembered[1]
    key = _version_key(config)
    settings = None
    if key is not None:
        with _cache_lock:
            settings = _cache.get(key)
            if settings is not None:
                _cache.move_to_end(key)
    if settings is None:
        settings = Settings.of(normalize_stored_settings(document))
        if key is not None:
            with _cache_lock:
                _cache[key] = settings
                while len(_cache) > _CACHE_SIZE:
                    _cache.popitem(last=False)
    # Plain instance state, not a mapped attribute: SQLAlchemy ignores it.
    config.__dict__[_INSTANCE_KEY] = (document, settings)
    return settings


_INSTANCE_KEY = "_hpe_typed_settings"


def _version_key(config) -> tuple[uuid.UUID, dt.datetime] | None:
    """``(id, updated_at)`` when the instance holds exactly a stored version, else None."""
    from sqlalchemy import inspect

    state = inspect(config, raiseerr=False)
    if state is None or not state.persistent or state.modified or config.updated_at is None:
        return None
    return (config.id, config.updated_at)
