"""What a publishable key may do: the one place the rules live.

A publishable key (``hpe_pk_...``) is public by design: it sits in web pages. Whoever
reads it may call what it may call, so it may do only what a web page needs, as each
configuration's ``publishable_keys`` block says (:class:`PublishableKeys`):

- decide on the client-side channels only (``channels``, ``["web"]`` by default), and
  see in the answer that channel's content only, no costs, no targeting rules
  (:func:`check_decision`, :func:`client_view`);
- report outcomes only for decisions it was given, with the decision's
  ``outcome_token``, only of the types listed in ``outcome_events``, without a value, an
  ``occurred_at``, a ``user_id`` or an ``idempotency_key`` (enforced by
  :func:`hpe_core.learn.outcomes.record`);
- nothing at all when ``allowed`` is false (:func:`check_allowed`).

Secret keys are never limited here. The engine's own callers (tracking links, webhooks)
act with secret principals.
"""

from __future__ import annotations

from collections.abc import Mapping

from hpe_core.errors import Forbidden
from hpe_core.store.vocabulary import KeyKind
from hpe_core.tenancy.settings_types import Settings
from hpe_core.tenancy.workspaces import Principal


def publishable(principal: Principal) -> bool:
    """True for a publishable key's principal."""
    return principal.kind == KeyKind.PUBLISHABLE


def check_allowed(settings: Settings, principal: Principal) -> None:
    """:raises Forbidden: a publishable key, and the configuration requires a secret key"""
    if publishable(principal) and not settings.publishable_keys.allowed:
        raise Forbidden(
            "This configuration requires a secret key for every call "
            "(publishable_keys.allowed is false)."
        )


def check_decision(settings: Settings, principal: Principal, channel: str) -> None:
    """Refuse a decision a publishable key may not ask for, before anything is read.

    :raises Forbidden: the configuration requires a secret key, or ``channel`` is not
        one of its client-side channels (``publishable_keys.channels``)
    """
    if not publishable(principal):
        return
    check_allowed(settings, principal)
    if channel not in settings.publishable_keys.channels:
        allowed = ", ".join(settings.publishable_keys.channels) or "none"
        raise Forbidden(
            f"A publishable key may only request decisions on the configuration's "
            f"client-side channels ({allowed}): use a secret key for {channel!r}.",
            {"channel": ["Not a client-side channel (publishable_keys.channels)."]},
        )


#: The keys of an action a client sees: no cost, no rules, only its channel's content.
_CLIENT_ACTION_KEYS = ("id", "features")


def client_view(action: Mapping | None, channel: str) -> dict | None:
    """An action as a publishable key's caller sees it: its id, features and the
    content of ``channel`` only (``content.web``); never its cost, rules, or the content
    of other channels (email templates, ad audiences)."""
    if action is None:
        return None
    view = {key: action[key] for key in _CLIENT_ACTION_KEYS if key in action}
    content = action.get("content") or {}
    view["content"] = {channel: content[channel]} if channel in content else {}
    return view
