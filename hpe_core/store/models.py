"""The data model: the seed's three ``041_`` tables and the tables the service adds.

Table names start with a digit, so SQL must quote them; SQLAlchemy does that for any
``__tablename__`` it is given, on SQLite and PostgreSQL alike (tests prove it on both).
UUIDs are made in Python and JSON is JSONB on PostgreSQL, so both backends behave alike.
"""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    Uuid,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.sql import text

from hpe_core.store.limits import MAX_USER_ID_LENGTH
from hpe_core.store.vocabulary import (
    ConfigStatus,
    ConsentStatus,
    DecisionSource,
    DeliveryStatus,
    KeyKind,
    RecommendationStatus,
    Role,
    Severity,
    Variant,
    WebhookEndpointStatus,
    WebhookMessageStatus,
    sql_in,
)

PREFIX = "041_hyper_personalization_engine_"

#: JSON column: JSONB on PostgreSQL (indexable, compact), JSON text on SQLite.
JsonDocument = JSON().with_variant(JSONB(), "postgresql")


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class UTCDateTime(TypeDecorator):
    """A timestamp that is always timezone-aware UTC in Python.

    SQLite stores no offset, so values read back naive; this puts UTC back on them.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is not None and value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        if value is not None and dialect.name == "sqlite":
            return value.astimezone(dt.UTC).replace(tzinfo=None)
        return value

    def process_result_value(self, value, dialect):
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=dt.UTC)
        return value


# Stable constraint names so Alembic migrations can refer to them on every backend.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class Workspace(Base):
    """A tenant. Every other object belongs to exactly one workspace."""

    __tablename__ = PREFIX + "workspaces"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class ApiKey(Base):
    """A credential for one workspace. Only a SHA-256 of the secret is stored.

    ``prefix`` is the first characters of the key, kept in clear so a key can be found
    (and shown in listings and the activity log) without storing the secret.
    """

    __tablename__ = PREFIX + "api_keys"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    workspace_id: Mapped[str] = mapped_column(ForeignKey(Workspace.id), index=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    kind: Mapped[str] = mapped_column(String(20), default=KeyKind.SECRET)
    prefix: Mapped[str] = mapped_column(String(32), unique=True)
    secret_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    revoked_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)

    __table_args__ = (CheckConstraint(sql_in("kind", KeyKind), name="kind"),)


class Config(Base):
    """A personalization configuration: offers, channels, reward, guardrails, automation."""

    __tablename__ = PREFIX + "configs"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    workspace_id: Mapped[str] = mapped_column(ForeignKey(Workspace.id))
    name: Mapped[str] = mapped_column(String(200))
    settings: Mapped[dict] = mapped_column(JsonDocument)
    status: Mapped[str] = mapped_column(String(16), default=ConfigStatus.ACTIVE)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    __table_args__ = (
        CheckConstraint(sql_in("status", ConfigStatus), name="status"),
        Index("ix_041_hpe_configs_workspace_created", "workspace_id", "created_at"),
    )


class Activity(Base):
    """One entry of a configuration's audit trail (FR-003): who did what, and when.

    ``actor`` is an API key prefix, ``cli`` or ``engine``; ``data`` holds the details,
    e.g. ``{"changes": {"settings.holdout.percent": [10, 20]}}`` for an update.
    """

    __tablename__ = PREFIX + "activities"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    workspace_id: Mapped[str] = mapped_column(ForeignKey(Workspace.id))
    config_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey(Config.id), nullable=True)
    type: Mapped[str] = mapped_column(String(64))
    #: An API key prefix, ``cli``, ``engine``, or a person (``user:<email>``, hence 320).
    actor: Mapped[str] = mapped_column(String(320))
    data: Mapped[dict] = mapped_column(JsonDocument, default=dict)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (Index("ix_041_hpe_activities_config_created", "config_id", "created_at"),)


class MetricsDay(Base):
    """One configuration's rolled-up metrics for one UTC date (per variant, channel, action)."""

    __tablename__ = PREFIX + "metrics"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    workspace_id: Mapped[str] = mapped_column(ForeignKey(Workspace.id))
    config_id: Mapped[uuid.UUID] = mapped_column(ForeignKey(Config.id))
    date: Mapped[dt.date] = mapped_column(Date)
    metrics: Mapped[dict] = mapped_column(JsonDocument, default=dict)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    __table_args__ = (UniqueConstraint("config_id", "date"),)


class Decision(Base):
    """One logged decision: what was chosen for whom, from what, with which probability.

    This is the big table (millions of rows a day for a busy workspace): it is written
    with one INSERT per decision and updated once more, off the hot path, when its reward
    window closes and it is learned (``learned_at``, ``reward``, ``engaged``).
    """

    __tablename__ = PREFIX + "decisions"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    workspace_id: Mapped[str] = mapped_column(String(64))
    config_id: Mapped[uuid.UUID] = mapped_column(ForeignKey(Config.id))
    user_id: Mapped[str] = mapped_column(String(MAX_USER_ID_LENGTH))
    channel: Mapped[str] = mapped_column(String(64))
    context: Mapped[dict] = mapped_column(JsonDocument, default=dict)
    #: Eligible action ids, in the order VW saw them, and the full distribution over them.
    eligible: Mapped[list] = mapped_column(JsonDocument)
    probabilities: Mapped[list] = mapped_column(JsonDocument)
    action_id: Mapped[str] = mapped_column(String(128))
    probability: Mapped[float] = mapped_column(Float)
    variant: Mapped[str] = mapped_column(String(16))
    #: Which policy served this decision (:class:`~hpe_core.store.vocabulary.Policy`).
    policy: Mapped[str] = mapped_column(String(16))
    model_version: Mapped[int] = mapped_column(Integer, default=0)
    #: The model's own top choice (for apprentice mode's agreement rate and evaluation).
    model_action_id: Mapped[str | None] = mapped_column(String(128), nullable=True)
    #: The API or historical logs (:class:`~hpe_core.store.vocabulary.DecisionSource`).
    source: Mapped[str] = mapped_column(String(16), default=DecisionSource.LIVE)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    window_closes_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    learned_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    reward: Mapped[float | None] = mapped_column(Float, nullable=True)
    engaged: Mapped[bool | None] = mapped_column(Boolean, nullable=True)
    #: A reward given with an imported decision (instead of outcome events).
    given_reward: Mapped[float | None] = mapped_column(Float, nullable=True)
    #: The shared feature line the model scored (``hpe_core.decide.features.decision_features``),
    #: kept so learning replays exactly what was predicted without re-featurizing.
    features: Mapped[str | None] = mapped_column(Text, nullable=True)
    #: When the engine chose the channel too (``"channel": "auto"``): the channel of each
    #: ``eligible`` entry (an action may appear once per channel); None otherwise, when
    #: every entry is on ``channel`` (migration 0010).
    eligible_channels: Mapped[list | None] = mapped_column(JsonDocument, nullable=True)

    __table_args__ = (
        CheckConstraint(sql_in("variant", Variant), name="variant"),
        # The learner's scan: this config's unlearned decisions whose window has closed.
        Index(
            "ix_041_hpe_decisions_unlearned",
            "config_id",
            "window_closes_at",
            postgresql_where=text("learned_at IS NULL"),
            sqlite_where=text("learned_at IS NULL"),
        ),
        # Frequency caps and attribution: one user's recent decisions in a config.
        Index("ix_041_hpe_decisions_user", "config_id", "user_id", "created_at"),
        # Metrics by day.
        Index("ix_041_hpe_decisions_created", "config_id", "created_at"),
    )


class Outcome(Base):
    """One event that came back (open, click, conversion...), tied to a decision or a user.

    ``idempotency_key`` is unique per configuration, so a retried event is stored once.
    ``late`` outcomes arrived after their decision's reward window: kept, never learned.
    """

    __tablename__ = PREFIX + "outcomes"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    workspace_id: Mapped[str] = mapped_column(String(64))
    config_id: Mapped[uuid.UUID] = mapped_column(ForeignKey(Config.id))
    decision_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey(Decision.id), nullable=True, index=True
    )
    user_id: Mapped[str | None] = mapped_column(String(MAX_USER_ID_LENGTH), nullable=True)
    type: Mapped[str] = mapped_column(String(64))
    value: Mapped[float | None] = mapped_column(Float, nullable=True)
    occurred_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    received_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    idempotency_key: Mapped[str] = mapped_column(String(256))
    late: Mapped[bool] = mapped_column(Boolean, default=False)
    source: Mapped[str] = mapped_column(String(16), default="api")
    #: For user-level outcomes (no ``decision_id``): when attribution last credited it to
    #: the user's decisions (``..._attributions``); NULL while it waits for attribution.
    attributed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)

    __table_args__ = (
        UniqueConstraint("config_id", "idempotency_key"),
        Index("ix_041_hpe_outcomes_user", "config_id", "user_id", "occurred_at"),
        # Metrics computed live (today): the outcomes received since the first live day
        # began, not all of them (migration 0006).
        Index("ix_041_hpe_outcomes_received", "config_id", "received_at"),
        # The attribution job's scan: user-level outcomes not attributed yet.
        Index(
            "ix_041_hpe_outcomes_unattributed",
            "config_id",
            "received_at",
            postgresql_where=text("decision_id IS NULL AND attributed_at IS NULL"),
            sqlite_where=text("decision_id IS NULL AND attributed_at IS NULL"),
        ),
        # The metrics' late outcomes (hpe_core.measure.late), a few among many: every
        # read finds them without reading the range's other outcomes (migration 0014).
        Index(
            "ix_041_hpe_outcomes_late",
            "config_id",
            "received_at",
            postgresql_where=text("late IS TRUE"),
            sqlite_where=text("late IS TRUE"),
        ),
    )


class Attribution(Base):
    """One decision's share of a user-level outcome's credit (migration 0005).

    An outcome that came with a ``user_id`` but no ``decision_id`` is split over that
    user's decisions inside the attribution window by the configured model; ``credit``
    values of one outcome sum to 1. Re-attributing an outcome replaces its rows in one
    transaction, so credit is never counted twice.
    """

    __tablename__ = PREFIX + "attributions"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    workspace_id: Mapped[str] = mapped_column(String(64))
    config_id: Mapped[uuid.UUID] = mapped_column(ForeignKey(Config.id))
    outcome_id: Mapped[uuid.UUID] = mapped_column(ForeignKey(Outcome.id))
    decision_id: Mapped[uuid.UUID] = mapped_column(ForeignKey(Decision.id), index=True)
    model: Mapped[str] = mapped_column(String(64))
    credit: Mapped[float] = mapped_column(Float)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (
        UniqueConstraint("outcome_id", "decision_id"),
        # Metrics computed live (today): credit given since the first live day began
        # (migration 0006).
        Index("ix_041_hpe_attributions_created", "config_id", "created_at"),
    )


class StaleMetricsDay(Base):
    """A day whose stored rollup no longer matches the decision log (migration 0005).

    Marked when something changes an already rolled-up day (an import, a late outcome,
    learning, attribution); the next rollup pass recomputes it and clears the mark, and
    until then ``GET /metrics`` computes that day live.
    """

    __tablename__ = PREFIX + "metrics_stale"

    config_id: Mapped[uuid.UUID] = mapped_column(ForeignKey(Config.id), primary_key=True)
    date: Mapped[dt.date] = mapped_column(Date, primary_key=True)
    marked_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class Recommendation(Base):
    """One optimization recommendation for a configuration (migration 0005).

    Raised by the measurement pass with its evidence and a settings patch; one row per
    ``(config_id, kind, subject)`` (e.g. ``retire_action`` / ``offer-7``), refreshed while
    the condition holds, ``resolved`` when it no longer does, ``applied`` once its patch
    was applied (by a person, or by the engine in ``autonomous`` mode).
    """

    __tablename__ = PREFIX + "recommendations"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    workspace_id: Mapped[str] = mapped_column(String(64))
    config_id: Mapped[uuid.UUID] = mapped_column(ForeignKey(Config.id))
    kind: Mapped[str] = mapped_column(String(64))
    subject: Mapped[str] = mapped_column(String(256), default="")
    severity: Mapped[str] = mapped_column(String(16))
    title: Mapped[str] = mapped_column(Text)
    detail: Mapped[str] = mapped_column(Text, default="")
    evidence: Mapped[dict] = mapped_column(JsonDocument, default=dict)
    #: A JSON merge patch of the settings, or NULL when there is nothing to apply (an
    #: alarm a person must investigate).
    patch: Mapped[dict | None] = mapped_column(JsonDocument, nullable=True)
    status: Mapped[str] = mapped_column(String(16), default=RecommendationStatus.OPEN)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    applied_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    applied_by: Mapped[str | None] = mapped_column(String(64), nullable=True)

    __table_args__ = (
        UniqueConstraint("config_id", "kind", "subject"),
        CheckConstraint(sql_in("status", RecommendationStatus), name="status"),
        CheckConstraint(sql_in("severity", Severity), name="severity"),
    )


class ModelVersion(Base):
    """One saved VW model of a configuration. The newest version serves decisions."""

    __tablename__ = PREFIX + "model_versions"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    config_id: Mapped[uuid.UUID] = mapped_column(ForeignKey(Config.id))
    version: Mapped[int] = mapped_column(Integer)
    vw_args: Mapped[str] = mapped_column(Text)
    vw_version: Mapped[str] = mapped_column(String(32))
    checksum: Mapped[str] = mapped_column(String(64))
    model: Mapped[bytes] = mapped_column(LargeBinary)
    #: Examples learned in the run that made this version, and since the first version.
    examples: Mapped[int] = mapped_column(Integer, default=0)
    total_examples: Mapped[int] = mapped_column(Integer, default=0)
    #: "learn", or "rollback:<version>" for a restored copy.
    source: Mapped[str] = mapped_column(String(32), default="learn")
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    #: What learning keeps beside the model (``hpe_core.decide.policy.trials.LearnerState``:
    #: the drift detector, the actions on trial), None before migration 0010.
    state: Mapped[dict | None] = mapped_column(JsonDocument, nullable=True)

    # Two learners racing on one config cannot both write version N+1: one rolls back.
    __table_args__ = (UniqueConstraint("config_id", "version"),)


# --- Channels: deliveries, consent, inbound webhooks (migration 0003) -----------------


class Delivery(Base):
    """One decision handed to its channel to render and send (at most one per decision).

    ``recipient`` and ``variables`` (personal data: an address, a first name) are kept
    only until the delivery succeeds or fails for good, then erased; ``result`` keeps
    what the channel reported (message id; for ads, the hashed identifiers).
    """

    __tablename__ = PREFIX + "deliveries"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    workspace_id: Mapped[str] = mapped_column(String(64))
    config_id: Mapped[uuid.UUID] = mapped_column(ForeignKey(Config.id))
    decision_id: Mapped[uuid.UUID] = mapped_column(ForeignKey(Decision.id), unique=True)
    channel: Mapped[str] = mapped_column(String(64))
    action_id: Mapped[str] = mapped_column(String(128))
    user_id: Mapped[str] = mapped_column(String(MAX_USER_ID_LENGTH))
    status: Mapped[str] = mapped_column(String(16), default=DeliveryStatus.PENDING)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    recipient: Mapped[dict | None] = mapped_column(JsonDocument, nullable=True)
    variables: Mapped[dict | None] = mapped_column(JsonDocument, nullable=True)
    result: Mapped[dict] = mapped_column(JsonDocument, default=dict)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    sent_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)

    __table_args__ = (
        CheckConstraint(sql_in("status", DeliveryStatus), name="status"),
        # Audiences: one configuration's sent deliveries of a channel, per action, recent.
        Index("ix_041_hpe_deliveries_audience", "config_id", "channel", "action_id", "sent_at"),
    )


class Consent(Base):
    """A user's consent for one channel of a workspace, when it differs from the default.

    A row exists once a user unsubscribed, bounced or complained (or re-subscribed);
    decisions on that channel then answer ``reason: no_consent``.
    """

    __tablename__ = PREFIX + "consents"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    workspace_id: Mapped[str] = mapped_column(String(64))
    channel: Mapped[str] = mapped_column(String(64))
    user_id: Mapped[str] = mapped_column(String(MAX_USER_ID_LENGTH))
    status: Mapped[str] = mapped_column(String(16))
    source: Mapped[str] = mapped_column(String(64), default="")
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (
        UniqueConstraint("workspace_id", "channel", "user_id"),
        CheckConstraint(sql_in("status", ConsentStatus), name="status"),
    )


class WebhookSecret(Base):
    """A workspace's webhook signing secret, stored as a nonce: the secret itself is
    HMAC(SECRET_KEY, nonce), so a database dump alone does not reveal it.

    After a rotation the previous secret stays valid until ``expires_at``.
    """

    __tablename__ = PREFIX + "webhook_secrets"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    workspace_id: Mapped[str] = mapped_column(ForeignKey(Workspace.id), index=True)
    nonce: Mapped[str] = mapped_column(String(64))
    hint: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)


class WebhookReceipt(Base):
    """A verified webhook already processed (its signature's digest): replays are no-ops.

    Rows older than the signature tolerance can be purged: such a replay fails the
    timestamp check anyway.
    """

    __tablename__ = PREFIX + "webhook_receipts"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    workspace_id: Mapped[str] = mapped_column(String(64))
    channel: Mapped[str] = mapped_column(String(64))
    digest: Mapped[str] = mapped_column(String(64))
    events: Mapped[int] = mapped_column(Integer, default=0)
    received_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)

    __table_args__ = (UniqueConstraint("workspace_id", "digest"),)


class ChannelSettings(Base):
    """One workspace's settings for one channel (e.g. the web channel's CORS origins),
    validated by the connector's ``workspace_settings_schema``."""

    __tablename__ = PREFIX + "channel_settings"

    workspace_id: Mapped[str] = mapped_column(ForeignKey(Workspace.id), primary_key=True)
    channel: Mapped[str] = mapped_column(String(64), primary_key=True)
    settings: Mapped[dict] = mapped_column(JsonDocument, default=dict)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


# --- People: dashboard users, their workspaces and roles (migration 0007) --------------


class User(Base):
    """A person who signs in to the dashboard (API keys stay for machines).

    Only a salted, memory-hard hash of the password is kept
    (:mod:`hpe_core.tenancy.passwords`). ``session_epoch`` is copied into each sign-in
    session: disabling the person or resetting the password bumps it, which ends every
    session at once, in every process.
    """

    __tablename__ = PREFIX + "users"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    #: Lower-cased: one person, one address, however it is typed.
    email: Mapped[str] = mapped_column(String(254), unique=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    password_hash: Mapped[str] = mapped_column(String(255))
    session_epoch: Mapped[int] = mapped_column(Integer, default=0)
    #: Consecutive failed sign-ins, and until when further attempts are refused.
    failed_sign_ins: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    first_sign_in_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    last_sign_in_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    disabled_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class Membership(Base):
    """A person's role in one workspace."""

    __tablename__ = PREFIX + "memberships"

    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey(User.id), primary_key=True)
    workspace_id: Mapped[str] = mapped_column(ForeignKey(Workspace.id), primary_key=True)
    role: Mapped[str] = mapped_column(String(16), default=Role.EDITOR)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (
        CheckConstraint(sql_in("role", Role), name="role"),
        Index("ix_041_hpe_memberships_workspace", "workspace_id"),
    )


class SetupToken(Base):
    """The one-time first-run link (``hpe serve`` prints it while nobody can sign in).

    Stored hashed, like API keys; ``used_at`` is set when it created the first admin, and
    the link is dead from then on.
    """

    __tablename__ = PREFIX + "setup_tokens"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    used_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)


# --- Events out: outgoing webhook endpoints, messages and attempts (migration 0008) -----


class WebhookEndpoint(Base):
    """An HTTPS endpoint of a workspace that HPE posts events to (Standard Webhooks).

    ``event_types`` are exact types (``decision.created``) or families (``guardrail.*``).
    The signing secret is stored as a nonce, like inbound webhook secrets: the secret is
    derived from ``SECRET_KEY`` and the nonce (:mod:`hpe_core.integrations.webhook_signing`).
    ``failing_since`` is when the current run of failed attempts began (NULL after a
    success); an endpoint failing for a day is disabled.
    """

    __tablename__ = PREFIX + "webhook_endpoints"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    workspace_id: Mapped[str] = mapped_column(ForeignKey(Workspace.id), index=True)
    url: Mapped[str] = mapped_column(String(2000))
    description: Mapped[str] = mapped_column(String(500), default="")
    event_types: Mapped[list] = mapped_column(JsonDocument)
    secret_nonce: Mapped[str] = mapped_column(String(64))
    secret_hint: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16), default=WebhookEndpointStatus.ENABLED)
    disabled_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    failing_since: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    __table_args__ = (CheckConstraint(sql_in("status", WebhookEndpointStatus), name="status"),)


class WebhookMessage(Base):
    """One event to post to one endpoint; its id is the ``webhook-id`` header (``msg_`` +
    hex), the same on every retry, so receivers dedupe on it."""

    __tablename__ = PREFIX + "webhook_messages"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    workspace_id: Mapped[str] = mapped_column(String(64))
    endpoint_id: Mapped[uuid.UUID] = mapped_column(ForeignKey(WebhookEndpoint.id))
    event_type: Mapped[str] = mapped_column(String(64))
    payload: Mapped[dict] = mapped_column(JsonDocument)
    status: Mapped[str] = mapped_column(String(16), default=WebhookMessageStatus.PENDING)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    delivered_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)

    __table_args__ = (
        CheckConstraint(sql_in("status", WebhookMessageStatus), name="status"),
        Index("ix_041_hpe_webhook_messages_endpoint", "endpoint_id", "created_at"),
        # The sweep for messages whose job was lost: the unsettled ones, oldest first.
        Index("ix_041_hpe_webhook_messages_status", "status", "updated_at"),
    )


class WebhookAttempt(Base):
    """One attempt at posting a message: what the endpoint answered (or why it did not)."""

    __tablename__ = PREFIX + "webhook_attempts"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    message_id: Mapped[uuid.UUID] = mapped_column(ForeignKey(WebhookMessage.id), index=True)
    endpoint_id: Mapped[uuid.UUID] = mapped_column(ForeignKey(WebhookEndpoint.id))
    attempt: Mapped[int] = mapped_column(Integer)
    #: The HTTP status the endpoint answered, or NULL when it did not answer.
    status_code: Mapped[int | None] = mapped_column(Integer, nullable=True)
    #: The first characters of the answer's body.
    response: Mapped[str | None] = mapped_column(Text, nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    duration_ms: Mapped[float] = mapped_column(Float, default=0.0)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (Index("ix_041_hpe_webhook_attempts_endpoint", "endpoint_id", "created_at"),)


# --- The satisfaction survey (SC-003, migration 0009) ----------------------------------


class SurveyAnswer(Base):
    """A person's answer to the satisfaction survey in one workspace: a score of 1-5 and
    an optional comment, or a dismissal (no score). Either counts as having been asked
    (:mod:`hpe_core.tenancy.survey` asks again 30 days later)."""

    __tablename__ = PREFIX + "survey_answers"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey(User.id))
    workspace_id: Mapped[str] = mapped_column(ForeignKey(Workspace.id))
    #: 1 (very dissatisfied) to 5 (very satisfied); NULL: the person dismissed the prompt.
    score: Mapped[int | None] = mapped_column(Integer, nullable=True)
    comment: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (
        CheckConstraint("score IS NULL OR (score >= 1 AND score <= 5)", name="score"),
        # When was this person last asked (every page asks it, for the prompt).
        Index("ix_041_hpe_survey_answers_user_created", "user_id", "created_at"),
        # The workspace's report.
        Index("ix_041_hpe_survey_answers_workspace_created", "workspace_id", "created_at"),
    )


# --- Scheduled audience exports (migration 0011) -----------------------------------------


class AudienceSchedule(Base):
    """How often one configuration's audiences on a channel (``ads``) are exported, and
    how the last run went. The sweepers claim a due row by moving ``next_run_at`` on with
    a compare-and-set, so one process runs each export however many sweep."""

    __tablename__ = PREFIX + "audience_schedules"

    config_id: Mapped[uuid.UUID] = mapped_column(ForeignKey(Config.id), primary_key=True)
    channel: Mapped[str] = mapped_column(String(64), primary_key=True)
    workspace_id: Mapped[str] = mapped_column(String(64))
    every_hours: Mapped[int] = mapped_column(Integer)
    next_run_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    last_run_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    #: What the channel exported: ``[{action_id, audience, rows, target}]``.
    last_result: Mapped[list | None] = mapped_column(JsonDocument, nullable=True)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    __table_args__ = (Index("ix_041_hpe_audience_schedules_due", "next_run_at"),)


# --- Hourly partial rollups and the measured evaluation (migration 0012) ------------------


class MetricsHour(Base):
    """The counts of one configuration's decisions made in one UTC hour of yesterday or
    today, stored by the measurement pass once the hour is settled, so a read through
    today computes only the last hours live (``hpe_core.measure.hours``)."""

    __tablename__ = PREFIX + "metrics_hours"

    config_id: Mapped[uuid.UUID] = mapped_column(ForeignKey(Config.id), primary_key=True)
    hour: Mapped[dt.datetime] = mapped_column(UTCDateTime, primary_key=True)
    #: Decision-side counts by group and each decision's merged outcomes (its shape is
    #: in ``hpe_core.measure.hours``).
    counts: Mapped[dict] = mapped_column(JsonDocument)
    computed_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)


class MetricsHoursSum(Base):
    """The sum of one configuration's stored hours of a day (yesterday or today), with
    each hour's cut: what a read of that day starts from (``hpe_core.measure.hours``,
    migration 0015)."""

    __tablename__ = PREFIX + "metrics_hours_sums"

    config_id: Mapped[uuid.UUID] = mapped_column(ForeignKey(Config.id), primary_key=True)
    date: Mapped[dt.date] = mapped_column(Date, primary_key=True)
    counts: Mapped[dict] = mapped_column(JsonDocument)
    computed_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)


class StaleMetricsHour(Base):
    """An hour of yesterday or today whose stored partial no longer matches the decision
    log (learning, a Personalizer reward or activation, attribution changed a decision of
    it); reads compute it live until the next pass stores it again."""

    __tablename__ = PREFIX + "metrics_hours_stale"

    config_id: Mapped[uuid.UUID] = mapped_column(ForeignKey(Config.id), primary_key=True)
    hour: Mapped[dt.datetime] = mapped_column(UTCDateTime, primary_key=True)
    marked_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class EvaluationSnapshot(Base):
    """The off-policy evaluation the last measurement pass computed for a configuration
    (the results page shows it, with its time, instead of replaying the model on every
    load; ``GET /{id}/evaluation`` always computes afresh)."""

    __tablename__ = PREFIX + "evaluation_snapshots"

    config_id: Mapped[uuid.UUID] = mapped_column(ForeignKey(Config.id), primary_key=True)
    #: The range and the most recent decisions evaluated (at most ``sample_limit``).
    date_from: Mapped[dt.date] = mapped_column(Date)
    date_to: Mapped[dt.date] = mapped_column(Date)
    sample_limit: Mapped[int] = mapped_column(Integer)
    #: When the oldest decision evaluated was made, if it read ``sample_limit`` of them.
    sample_from: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    #: ``hpe_core.results.Evaluation`` as the API answers it.
    evaluation: Mapped[dict] = mapped_column(JsonDocument)
    computed_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)


# --- Idempotency keys (issue 14) ------------------------------------------------------


class IdempotencyKey(Base):
    """A request made with an idempotency key, and its first answer: the same key with the
    same request answers that again and does nothing; with another request it is a 409
    (Stripe's rule). Imports use it (``Idempotency-Key``, else the file's digest)."""

    __tablename__ = PREFIX + "idempotency_keys"

    workspace_id: Mapped[str] = mapped_column(ForeignKey(Workspace.id), primary_key=True)
    key: Mapped[str] = mapped_column(String(300), primary_key=True)
    #: What the key was used for, e.g. ``POST /<config id>/imports``.
    scope: Mapped[str] = mapped_column(String(200))
    #: SHA-256 of the request (its body): another request under the same key is a 409.
    request_digest: Mapped[str] = mapped_column(String(64))
    status: Mapped[int] = mapped_column(Integer)
    response: Mapped[dict] = mapped_column(JsonDocument)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
