"""What the web app and the workers share, built once per process from the settings.

The settings come in layers, later wins: :class:`Defaults` → ``instance/config.py`` →
``HPE_*`` environment variables (the ``hpe`` command also reads ``.env`` into them) →
the overrides a caller passes (tests, ``hpe simulate``). :func:`build` then makes the
database engine and session factory, the plugin manager, the configured channels and the
settings catalog, the decision engine and the job backend, and hands them over as one
:class:`Runtime`.

``web.create_app`` and ``hpe worker`` both start here, so an API process and a worker
see the same settings and the same plugins, and a job needs no Flask app. This module
builds nothing it would have to import from ``plugins`` or ``worker`` (hpe_core never
does): the caller passes the plugin functions (``plugins.manager``) and the job backend
factory (``worker.queues.make_backend``); ``worker.boot.build_runtime`` wires the
defaults.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from types import ModuleType
from typing import Any, Protocol

from hpe_core import activity_events, secret_keys
from hpe_core.decide.decisions import DecisionEngine
from hpe_core.deliver.channels import ChannelRuntime, Connector
from hpe_core.deliver.outbound import OutboundPolicy
from hpe_core.deliver.tracking_links import TrackingLinks
from hpe_core.events import notify
from hpe_core.measure.measurement import MeasurementPlugins
from hpe_core.secret_keys import SecretKeys
from hpe_core.store import db
from hpe_core.tenancy.settings import ATTRIBUTION_MODELS

ENV_PREFIX = "HPE_"


class Defaults:
    """The operational settings and their defaults (the README's Configuration table
    lists the ones an operator sets).

    Every key can be overridden by ``instance/config.py``, an ``HPE_<KEY>`` environment
    variable (parsed as JSON when it is JSON) or the overrides given to
    :func:`load_settings`.
    """

    #: SQLAlchemy URL. None = SQLite file ``hpe.db`` in the instance folder (the embedded
    #: default). PostgreSQL: ``postgresql+psycopg://user:pass@host/db`` (``postgresql://``
    #: is accepted too).
    DATABASE_URL = None
    #: Migrate the database on start. None = only for SQLite (the embedded default);
    #: on PostgreSQL operators run ``hpe db upgrade`` as a deploy step.
    AUTO_MIGRATE = None
    #: Refuse to start on a database whose schema is not at this HPE's revision.
    SCHEMA_CHECK = True
    #: Redis URL for RQ jobs. None = jobs run inline in the API process.
    REDIS_URL = None
    #: Seconds a verified API key is trusted without a database lookup (decisions are hot).
    #: Revoking a key takes effect within this delay in every API process; 0 disables.
    KEY_CACHE_SECONDS = 10.0
    #: Without Redis, close reward windows and learn in background threads of the API
    #: process. False (tests): jobs wait until run explicitly.
    INLINE_SWEEPER = True
    #: Seconds between sweeps for closed reward windows (inline and in `hpe worker`).
    SWEEP_INTERVAL = 1.0
    #: Seconds between measurement passes per configuration (daily rollups, circuit
    #: breaker, recommendations; inline and in `hpe worker`).
    MEASURE_INTERVAL = 300.0
    #: Signs tracking links, outcome tokens and sessions, and derives webhook secrets.
    #: None: the embedded default generates one in the instance folder; PostgreSQL or
    #: Redis (production) refuse to start without it (hpe_core.secret_keys).
    SECRET_KEY = None
    #: Old keys that still verify (newest first) while ``SECRET_KEY`` signs: rotation.
    SECRET_KEY_FALLBACKS: list = []
    #: Networks outbound requests a tenant can influence (ads uploads, outgoing webhooks,
    #: plugins' calls) may reach although they are not public (CIDR strings); all others
    #: are refused (SSRF).
    OUTBOUND_ALLOWED_NETWORKS: list = []
    #: HPE's public base URL, for links in messages (tracking links, the open pixel).
    PUBLIC_URL = None
    #: None = load every installed plugin; a list = only these entry-point names.
    LOAD_PLUGINS = None
    #: Entry-point names never to load.
    BLOCKED_PLUGINS: list = []
    #: Log every plugin hook call (debugging plugins).
    TRACE_PLUGINS = False
    #: Per-plugin settings, e.g. ``{"email": {"smtp_host": "..."}}``.
    PLUGINS: dict = {}
    #: scrypt's cost (N) for dashboard passwords: 2**17 is OWASP's floor (~0.3 s and
    #: 128 MiB a hash). Lower only for tests; stored hashes carry their own cost and are
    #: re-hashed at the next sign-in when it rises.
    PASSWORD_HASH_COST = 2**17
    #: Largest accepted request body, in bytes (imports are NDJSON and can be big).
    MAX_CONTENT_LENGTH = 64 * 1024 * 1024
    #: Outgoing webhooks (``/webhook-endpoints``): ``decision.created`` events are batched
    #: for at most this many seconds, and at most ``WEBHOOK_BATCH_SIZE`` decisions a message.
    WEBHOOK_BATCH_SECONDS = 1.0
    WEBHOOK_BATCH_SIZE = 500
    #: Seconds a process trusts its list of subscribed endpoints (a change made in another
    #: process reaches this one within this delay; in the same process, at once).
    WEBHOOK_CACHE_SECONDS = 5.0
    #: Accept ``http://`` endpoint URLs on any host (default: only on loopback addresses).
    WEBHOOK_ALLOW_HTTP = False
    #: ``GET /metrics`` (Prometheus) wants ``Authorization: Bearer <token>`` when set;
    #: unset, it answers clients on this machine (loopback) only.
    METRICS_TOKEN = None
    #: ``text`` (Python's default) or ``json``: one JSON object per log line, with the API
    #: request's id (``X-Request-ID``), for log pipelines.
    LOG_FORMAT = "text"


def default_instance_path() -> str:
    """``HPE_INSTANCE_PATH``, else ``./instance`` (relative to the current directory)."""
    return os.environ.get("HPE_INSTANCE_PATH") or str(Path.cwd() / "instance")


def load_settings(
    overrides: Mapping[str, Any] | None = None,
    *,
    instance_path: str | None = None,
    environ: Mapping[str, str] | None = None,
    defaults: type = Defaults,
) -> dict[str, Any]:
    """The settings, layered: ``defaults`` → ``instance/config.py`` → ``HPE_*`` → overrides.

    ``HPE_PLUGINS__email__smtp_host=mail`` sets one nested key; values that parse as JSON
    (``true``, ``10``, ``["email"]``) are taken as JSON, anything else as a string. Without
    ``DATABASE_URL`` the result points at the SQLite file ``hpe.db`` in the instance folder
    (created), and a ``postgresql://`` URL is given the bundled psycopg 3 driver.

    :param instance_path: the instance folder (default :func:`default_instance_path`)
    :param environ: the environment (default ``os.environ``)
    :param defaults: a class whose UPPERCASE attributes are the first layer
    """
    instance_path = instance_path or default_instance_path()
    # Copies: a nested override (HPE_PLUGINS__email__...) must never change the defaults
    # every other runtime of this process starts from.
    settings = {
        key: copy.deepcopy(getattr(defaults, key)) for key in dir(defaults) if key.isupper()
    }
    settings.update(_instance_config(Path(instance_path) / "config.py"))
    _apply_environment(settings, os.environ if environ is None else environ)
    settings.update(overrides or {})
    if not settings.get("DATABASE_URL"):
        Path(instance_path).mkdir(parents=True, exist_ok=True)
        settings["DATABASE_URL"] = f"sqlite:///{Path(instance_path) / 'hpe.db'}"
    settings["DATABASE_URL"] = normalize_database_url(settings["DATABASE_URL"])
    settings["INSTANCE_PATH"] = str(instance_path)
    return settings


def _instance_config(path: Path) -> dict[str, Any]:
    """The UPPERCASE names of ``instance/config.py`` (none if there is no such file)."""
    if not path.is_file():
        return {}
    namespace: dict[str, Any] = {"__file__": str(path)}
    exec(compile(path.read_bytes(), str(path), "exec"), namespace)  # noqa: S102 - operator's file
    return {key: value for key, value in namespace.items() if key.isupper()}


def _apply_environment(settings: dict[str, Any], environ: Mapping[str, str]) -> None:
    # Sorted, as Flask's from_prefixed_env did: HPE_PLUGINS before HPE_PLUGINS__email__x.
    for name in sorted(environ):
        if not name.startswith(ENV_PREFIX) or name == "HPE_INSTANCE_PATH":
            continue
        raw = environ[name]
        try:
            value: Any = json.loads(raw)
        except ValueError:
            value = raw
        *parents, leaf = name[len(ENV_PREFIX) :].split("__")
        target = settings
        for part in parents:
            if not isinstance(target.get(part), dict):
                target[part] = {}
            target = target[part]
        target[leaf] = value


def normalize_database_url(url: str) -> str:
    """psycopg 3 is the driver HPE ships: accept the common ``postgresql://`` spelling."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


class PluginFunctions(Protocol):
    """What :func:`build` needs from the plugin layer (``plugins.manager`` provides it)."""

    def make_plugin_manager(self, *, load, blocked, trace): ...

    def build_channels(self, pm, plugins_config: Mapping, runtime: ChannelRuntime): ...

    def attribution_models(self, pm) -> dict[str, object]: ...

    def PluginCatalog(self, channel_classes, attribution_models): ...  # noqa: N802


@dataclasses.dataclass(eq=False)
class Runtime:
    """Everything a process of HPE runs on, built once by :func:`build`.

    :param settings: the layered settings (:func:`load_settings`)
    :param sessions: the session factory on ``engine``
    :param pm: the plugin manager (built-in plugins and installed entry points)
    :param channels: channel name -> the configured connector
    :param catalog: validates settings against what the plugins offer
    :param measurement: the attribution models and channel costs measurement needs
    :param decisions: the decision engine (its caches live as long as the process)
    :param jobs: the job backend: inline (no Redis) or RQ
    """

    settings: dict[str, Any]
    engine: Any
    sessions: Callable[[], Any]
    pm: Any
    channels: dict[str, Connector]
    catalog: Any
    measurement: MeasurementPlugins
    decisions: DecisionEngine
    jobs: Any

    @property
    def instance_path(self) -> str:
        return self.settings["INSTANCE_PATH"]

    def close(self) -> None:
        """Release the database connections (an app or a worker going away)."""
        self.engine.dispose()


def build(
    settings: Mapping[str, Any],
    *,
    plugins: PluginFunctions | ModuleType,
    make_jobs: Callable[..., Any],
    plugin_manager=None,
) -> Runtime:
    """Build the runtime from ``settings``: database, schema check, plugins, channels,
    catalog, decision engine and job backend.

    :param plugins: the plugin layer's functions (``plugins.manager``)
    :param make_jobs: the job backend factory (``worker.queues.make_backend``)
    :param plugin_manager: a manager built by the caller (the plugin test kit's); None
        builds one from ``LOAD_PLUGINS``, ``BLOCKED_PLUGINS`` and ``TRACE_PLUGINS``
    :raises RuntimeError: the schema is not migrated, a plugin's settings are invalid, or
        the secret key is missing (production) or weak (:mod:`hpe_core.secret_keys`)
    """
    settings = dict(settings)
    secret_keys.settle(settings)  # before anything signs: never a known or missing key
    engine = db.make_engine(settings["DATABASE_URL"])
    prepare_schema(engine, settings)
    sessions = db.make_session_factory(engine)
    pm = plugin_manager or plugins.make_plugin_manager(
        load=settings["LOAD_PLUGINS"],
        blocked=settings["BLOCKED_PLUGINS"],
        trace=settings.get("TRACE_PLUGINS", False),
    )
    channels = _channels(settings, plugins, pm)
    models = plugins.attribution_models(pm)
    catalog = plugins.PluginCatalog(
        {name: type(connector) for name, connector in channels.items()},
        sorted(models) or list(ATTRIBUTION_MODELS),
    )
    measurement = _measurement(models, channels)
    activity_events.watch(sessions, pm)  # hpe_on_activity, hpe_on_recommendation_changed
    jobs = make_jobs(
        settings["REDIS_URL"],
        sessions,
        background=settings["INLINE_SWEEPER"],
        plugins=measurement,
    )
    runtime = Runtime(
        settings=settings,
        engine=engine,
        sessions=sessions,
        pm=pm,
        channels=channels,
        catalog=catalog,
        measurement=measurement,
        decisions=DecisionEngine(sessions, channel_costs=measurement.channel_costs),
        jobs=jobs,
    )
    notify(pm.hook.hpe_on_startup, runtime=runtime)
    return runtime


def _channels(
    settings: Mapping[str, Any], plugins: PluginFunctions | ModuleType, pm
) -> dict[str, Connector]:
    """The configured connectors, given what they send with: tracking links signed with
    the secret keys, the public URL and the outbound network policy.

    :raises RuntimeError: ``OUTBOUND_ALLOWED_NETWORKS`` holds something not a network
    """
    public_url = settings.get("PUBLIC_URL")
    channel_runtime = ChannelRuntime(
        links=TrackingLinks(SecretKeys.from_settings(settings), public_url),
        public_url=public_url,
        outbound=_outbound_policy(settings),
    )
    return plugins.build_channels(pm, settings["PLUGINS"], channel_runtime)


def _measurement(
    models: dict[str, object], channels: Mapping[str, Connector]
) -> MeasurementPlugins:
    """The attribution models, and each channel's cost per decision (a connector without
    ``cost_per_decision`` costs nothing)."""
    return MeasurementPlugins(
        attribution_models=models,
        channel_costs={
            name: float(getattr(connector, "cost_per_decision", lambda: 0.0)())
            for name, connector in channels.items()
        },
    )


def _outbound_policy(settings: Mapping[str, Any]) -> OutboundPolicy:
    """:raises RuntimeError: ``OUTBOUND_ALLOWED_NETWORKS`` holds something not a network"""
    try:
        return OutboundPolicy.from_settings(settings)
    except ValueError as exc:
        raise RuntimeError(str(exc)) from exc


def prepare_schema(engine, settings: Mapping[str, Any]) -> None:
    """Migrate (``AUTO_MIGRATE``; by default on SQLite only), or check the schema is current.

    :raises RuntimeError: the database is not at this HPE's schema revision
    """
    auto = settings.get("AUTO_MIGRATE")
    if auto is None:
        auto = engine.dialect.name == "sqlite"
    if auto:
        db.upgrade(engine)
        return
    if settings.get("SCHEMA_CHECK", True):
        current, head = db.current_revision(engine), db.head_revision()
        if current != head:
            raise RuntimeError(
                f"The database is at schema revision {current or 'none'} but this HPE needs "
                f"{head}: run `hpe db upgrade`."
            )
