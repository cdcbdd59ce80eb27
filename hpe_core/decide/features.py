"""Turn decision contexts and actions into Vowpal Wabbit text lines for ``--cb_explore_adf``.

One decision is a multi-line example: a ``shared`` line holding the context features in
namespace ``c``, then one line per candidate action holding its features in namespace
``a``. The learner crosses the two namespaces (``-q ca``), so each context feature gets a
weight per action feature.

Every name and value is escaped injectively before it reaches VW: VW splits tokens on
spaces and tabs, starts a namespace at ``|`` and reads a weight after ``:``, so a raw
context value could otherwise inject features, namespaces or weights. Escaping is
percent-encoding (UTF-8 bytes as ``%XX``) of ``%``, ``|``, ``:``, every whitespace and
every non-printable character; names additionally escape ``=`` (which separates a
categorical name from its value) and ``.`` (which joins the keys of nested objects).

Canonical form: booleans become the categorical values ``true``/``false``, list items
are a set of categorical values (``[1, "1", "1"]`` is the tag ``1`` once), and numbers
keep their exact decimal form. Distinct canonical features always give distinct tokens.
"""

from __future__ import annotations

import functools
import hashlib
import math
import re
from collections.abc import Iterable, Mapping

from hpe_core.tenancy.settings_types import Action

#: VW namespace of the context features (the ``c`` of ``-q ca``).
CONTEXT_NAMESPACE = "c"
#: VW namespace of the action features (the ``a`` of ``-q ca``).
ACTION_NAMESPACE = "a"
#: Most features one context may produce; the rest are dropped (hostile requests).
MAX_FEATURES = 256
#: Names and string values longer than this are cut and suffixed with a digest.
MAX_TEXT = 128
#: Deeper nesting than this is ignored rather than recursed into.
MAX_DEPTH = 8
#: Numbers are clipped to +-NUMBER_LIMIT: VW stores float32 and squares feature values,
#: so larger values overflow to inf and turn the whole model into NaN.
NUMBER_LIMIT = 1e12
#: Numbers closer to zero than this are dropped: VW drops zero-valued features, and
#: anything smaller underflows float32 on its way to zero.
NUMBER_EPSILON = 1e-12

_SHARED_PREFIX = f"shared |{CONTEXT_NAMESPACE}"
_ACTION_PREFIX = f"|{ACTION_NAMESPACE}"
# Characters that can never appear unescaped. The fast path only checks for these and
# for non-ASCII text; the slow path decides per character.
_VALUE_SPECIAL = "%|:"
_NAME_SPECIAL = "%|:=."
_VALUE_SUSPECT = re.compile(r"[%|:]|[^\x21-\x7e]")
_NAME_SUSPECT = re.compile(r"[%|:=.]|[^\x21-\x7e]")
# "%~" never comes out of percent-encoding, so a digested long text cannot collide with
# the escape of any short text.
_DIGEST_MARK = "%~"


def context_features(context: Mapping) -> str:
    """Render a decision context as the ``shared`` line of an ADF example.

    Nested objects are flattened with ``.``-joined keys; numbers become numeric
    features (``name:value``), strings and booleans categorical ones (``name=value``),
    lists of scalars one categorical feature per distinct item. ``None``, non-finite
    numbers, zeros and empty keys are skipped. At most :data:`MAX_FEATURES` features are
    kept, in the context's own key order.

    :param context: the JSON object sent with the decision (never the user id)
    :returns: e.g. ``"shared |c device=mobile hour:21"``
    """
    tokens = _tokens(context, limit=MAX_FEATURES)
    if not tokens:
        return _SHARED_PREFIX
    return f"{_SHARED_PREFIX} {' '.join(tokens)}"


def decision_features(channel: str, context: Mapping) -> str:
    """The shared line of a decision: its context plus the touchpoint's channel.

    The channel is a feature of its own (``channel=email``) so the model learns channel
    preferences even when callers do not repeat the channel in the context; a context key
    named ``channel`` takes precedence.

    :param channel: the decision's channel
    :param context: the context sent with the decision
    """
    return context_features({"channel": channel, **context})


def pair_features(context: Mapping) -> str:
    """The shared line of a decision whose channel the engine chooses (``"channel":
    "auto"``): the context without a ``channel`` key; each entry's line carries its
    channel (:meth:`ActionCatalog.pair_line`).

    :param context: the context sent with the decision
    """
    return context_features({k: v for k, v in context.items() if k != "channel"})


def adf_example(
    shared_line: str,
    action_lines: Iterable[str],
    label: tuple[int, float, float] | None = None,
) -> list[str]:
    """Assemble one multi-line VW example, labelled when a reward is known.

    :param shared_line: from :func:`context_features`
    :param action_lines: from :meth:`ActionCatalog.line`, in candidate order
    :param label: ``(chosen index, cost, probability)``; cost is the negated reward
    :returns: the lines, ready for ``Workspace.learn`` or ``Workspace.predict``
    :raises ValueError: if the label's index, cost or probability is out of range
    """
    lines = [shared_line, *action_lines]
    if label is not None:
        index, cost, probability = label
        lines[index + 1] = label_prefix(index, len(lines) - 1, cost, probability) + lines[index + 1]
    return lines


def label_prefix(index: int, count: int, cost: float, probability: float) -> str:
    """Return the cb label (``"0:cost:probability "``) for the chosen action's line.

    In ADF the action is the labelled line itself, so the leading action number is 0.

    :param index: the chosen action's position among ``count`` actions
    :param count: how many actions the example has
    :param cost: the negated reward
    :param probability: the propensity the action was chosen with, in (0, 1]
    :returns: the text to put in front of the chosen action's line
    :raises ValueError: if any of them is out of range
    """
    if not 0 <= index < count:
        raise ValueError(f"Chosen index {index} is outside the {count} actions.")
    if not math.isfinite(cost):
        raise ValueError(f"Cost must be finite, got {cost!r}.")
    if not 0.0 < probability <= 1.0:
        raise ValueError(f"Probability must be in (0, 1], got {probability!r}.")
    return f"0:{float(cost)!r}:{float(probability)!r} "


class ActionCatalog:
    """The action lines of one configuration, rendered once and looked up by id.

    Each line holds ``id=<action id>`` and the action's features in namespace ``a``.
    Build one per configuration version and reuse it: the decision hot path then only
    joins cached strings.

    :param actions: the settings' actions: typed (``Settings.actions``), or as documents
        (``{"id", "features"?, ...}``, e.g. a simulation's or a test's list)
    :raises ValueError: if two actions share an id
    """

    def __init__(self, actions: Iterable[Action | Mapping]):
        lines: dict[str, str] = {}
        for action in actions:
            if isinstance(action, Action):
                action_id, features = action.id, action.features
            else:
                action_id, features = str(action["id"]), action.get("features") or {}
            if action_id in lines:
                raise ValueError(f"Duplicate action id {action_id!r}.")
            # The id token gives every action its own weights even when two actions
            # have identical features.
            tokens = [f"id={_escape_value(action_id)}"]
            tokens.extend(_tokens(features, limit=MAX_FEATURES))
            lines[action_id] = f"{_ACTION_PREFIX} {' '.join(tokens)}"
        self._lines = lines
        self.ids: tuple[str, ...] = tuple(lines)

    def line(self, action_id: str) -> str:
        """Return the cached line of one action.

        :raises KeyError: for an unknown action id
        """
        return self._lines[action_id]

    def pair_line(self, action_id: str, channel: str) -> str:
        """The line of one (action, channel) entry of a decision whose channel the engine
        chooses: the action's line plus ``channel=<channel>`` twice, in both namespaces.

        In the context namespace it scores as on a decision made on that channel (VW adds
        the shared line's features to every action line, and :func:`decision_features`
        puts ``channel=`` in the shared line), so what the model learned from decisions on
        a fixed channel carries over: each channel's base rate and each offer's fit to a
        channel. In the action namespace it is crossed with the context (``-q ca``): what
        *this person* responds on, which no fixed-channel decision can learn.

        :raises KeyError: for an unknown action id
        """
        value = _escape_value(channel)
        return f"{self._lines[action_id]} channel={value} |{CONTEXT_NAMESPACE} channel={value}"

    def lines(self, action_ids: Iterable[str] | None = None) -> list[str]:
        """Return the cached lines of the given actions (all of them by default), in order.

        :raises KeyError: for an unknown action id
        """
        if action_ids is None:
            return list(self._lines.values())
        return [self._lines[a] for a in action_ids]

    def __len__(self) -> int:
        return len(self._lines)

    def __contains__(self, action_id: object) -> bool:
        return action_id in self._lines


# --- rendering ---------------------------------------------------------------------------


def _tokens(features: Mapping, *, limit: int) -> list[str]:
    tokens: list[str] = []
    _flatten(features, "", tokens, limit, 0)
    return tokens


def _flatten(obj: Mapping, prefix: str, tokens: list[str], limit: int, depth: int) -> None:
    for key, value in obj.items():
        if len(tokens) >= limit:
            return
        name = prefix + _escape_name(str(key))
        if value is None:
            continue
        if isinstance(value, bool):
            if name:
                tokens.append(f"{name}={'true' if value else 'false'}")
        elif isinstance(value, int | float):
            number = _number(value)
            if number is not None and name:
                tokens.append(f"{name}:{number}")
        elif isinstance(value, str):
            if name:
                tokens.append(f"{name}={_escape_value(value)}")
        elif isinstance(value, Mapping):
            if depth + 1 < MAX_DEPTH:
                _flatten(value, name + ".", tokens, limit, depth + 1)
        elif isinstance(value, list | tuple) and name:
            seen: set[str] = set()
            for item in value:
                if len(tokens) >= limit:
                    return
                text = _category(item)
                if text is not None and text not in seen:
                    seen.add(text)
                    tokens.append(f"{name}={text}")


def _category(item: object) -> str | None:
    # A list is a set of tags: every scalar is categorical, nested structures are dropped.
    if isinstance(item, bool):
        return "true" if item else "false"
    if isinstance(item, str):
        return _escape_value(item)
    if isinstance(item, float):
        return _escape_value(repr(item)) if math.isfinite(item) else None
    if isinstance(item, int):
        try:
            return _escape_value(str(item))
        except ValueError:  # beyond Python's int-to-str digit limit
            return None
    return None


def _number(value: int | float) -> str | None:
    if isinstance(value, int):
        if -NUMBER_LIMIT <= value <= NUMBER_LIMIT:
            return str(value) if value else None
        return repr(NUMBER_LIMIT if value > 0 else -NUMBER_LIMIT)
    if not math.isfinite(value) or abs(value) < NUMBER_EPSILON:
        return None
    if abs(value) > NUMBER_LIMIT:
        value = math.copysign(NUMBER_LIMIT, value)
    return repr(value)


def _escape_name(text: str) -> str:
    if len(text) > MAX_TEXT:
        return _escape_long(text, _NAME_SUSPECT, _NAME_SPECIAL)
    return _escape_short_name(text)


def _escape_value(text: str) -> str:
    if len(text) > MAX_TEXT:
        return _escape_long(text, _VALUE_SUSPECT, _VALUE_SPECIAL)
    return _escape_short_value(text)


# Names and values repeat across requests (device=mobile); only short texts are cached so
# that hostile long strings cannot pin memory in the cache.
@functools.lru_cache(maxsize=8192)
def _escape_short_name(text: str) -> str:
    return _escape(text, _NAME_SUSPECT, _NAME_SPECIAL)


@functools.lru_cache(maxsize=8192)
def _escape_short_value(text: str) -> str:
    return _escape(text, _VALUE_SUSPECT, _VALUE_SPECIAL)


def _escape_long(text: str, suspect: re.Pattern, special: str) -> str:
    # Cut to bound memory, keep injectivity (up to a 96-bit digest collision).
    digest = hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=12)
    return _escape(text[: MAX_TEXT // 2], suspect, special) + _DIGEST_MARK + digest.hexdigest()


def _escape(text: str, suspect: re.Pattern, special: str) -> str:
    if suspect.search(text) is None:
        return text
    out = []
    for char in text:
        if char in special or char.isspace() or not char.isprintable():
            out.append("".join(f"%{b:02X}" for b in char.encode("utf-8", "surrogatepass")))
        else:
            out.append(char)
    return "".join(out)
