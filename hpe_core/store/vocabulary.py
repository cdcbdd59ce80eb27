"""The closed sets of values the stored columns hold: one definition each.

Every status, variant, policy and kind that the code compares against lives here as a
``str`` enum (rq's ``JobStatus(str, Enum)`` is the model): a member *is* its string, so
it is stored, compared and serialised to JSON as the plain value the API has always
shown, while a typo fails at import instead of silently matching nothing. The tables'
CHECK constraints are built from the same enums (:func:`sql_in`), so the database and
the code cannot disagree.

This module sits in ``store`` (the lowest layer) because the columns are defined there:
every stage may import it.
"""

from __future__ import annotations

from enum import StrEnum


class ConfigStatus(StrEnum):
    """A configuration's status (the seed's column: upper case)."""

    ACTIVE = "ACTIVE"
    #: The kill switch: no decisions until resumed; history and learning kept.
    PAUSED = "PAUSED"
    #: Deactivated (``DELETE /{id}``): no decisions; history kept.
    INACTIVE = "INACTIVE"


class Variant(StrEnum):
    """Which arm of the always-on experiment a decision belongs to."""

    TREATMENT = "treatment"
    HOLDOUT = "holdout"


class Policy(StrEnum):
    """Which policy chose a decision's action."""

    #: The contextual bandit (treatment, unless the automation level is manual).
    MODEL = "model"
    #: The holdout's baseline (and every decision in manual mode or after a breaker trip).
    BASELINE = "baseline"
    #: Another system's policy, known only by its logged propensities (imports).
    LOGGED = "logged"


class DecisionSource(StrEnum):
    """Where a logged decision came from."""

    LIVE = "live"
    IMPORT = "import"
    #: A live decision whose caller deferred it (Personalizer's ``deferActivation``): not
    #: counted, learned nor evaluated until activated, when it becomes ``live``.
    DEFERRED = "deferred"


class KeyKind(StrEnum):
    """An API key's kind."""

    SECRET = "secret"
    #: Public by design (it sits in web pages): may only do what a page needs.
    PUBLISHABLE = "publishable"


class Role(StrEnum):
    """A person's role in one workspace; each role may do what the ones before it may."""

    #: Reads every page.
    VIEWER = "viewer"
    #: Also creates and edits configurations, pauses them, applies and dismisses
    #: recommendations, rolls models back.
    EDITOR = "editor"
    #: Also manages people and API keys.
    ADMIN = "admin"

    def allows(self, needed: Role) -> bool:
        """True when this role may do what ``needed`` may."""
        order = list(Role)
        return order.index(self) >= order.index(needed)


class RecommendationStatus(StrEnum):
    """A recommendation's life: open until a person or the engine acts, or it resolves."""

    OPEN = "open"
    APPLIED = "applied"
    DISMISSED = "dismissed"
    #: The condition that raised it no longer holds (the measurement pass saw it go).
    RESOLVED = "resolved"


class Severity(StrEnum):
    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"


class DeliveryStatus(StrEnum):
    PENDING = "pending"
    RETRYING = "retrying"
    SENT = "sent"
    FAILED = "failed"


class ConsentStatus(StrEnum):
    """A person's consent on one channel of one workspace."""

    UNSUBSCRIBED = "unsubscribed"
    BOUNCED = "bounced"
    COMPLAINED = "complained"
    SUBSCRIBED = "subscribed"

    @property
    def withdrawn(self) -> bool:
        """True when the channel may no longer reach the person."""
        return self is not ConsentStatus.SUBSCRIBED


#: The statuses that stop a channel for a person.
WITHDRAWN_CONSENT = tuple(status for status in ConsentStatus if status.withdrawn)


def sql_in(column: str, values: type[StrEnum]) -> str:
    """The CHECK constraint text ``column IN ('a', 'b')`` for every member of ``values``."""
    listed = ", ".join(f"'{member.value}'" for member in values)
    return f"{column} IN ({listed})"


class WebhookEndpointStatus(StrEnum):
    """An outgoing webhook endpoint's status (events out, ``/webhook-endpoints``)."""

    ENABLED = "enabled"
    #: By a person (``PATCH``), or by HPE after the endpoint failed for a day.
    DISABLED = "disabled"


class WebhookMessageStatus(StrEnum):
    """One outgoing webhook message's life: pending until delivered or given up on."""

    PENDING = "pending"
    RETRYING = "retrying"
    DELIVERED = "delivered"
    FAILED = "failed"
