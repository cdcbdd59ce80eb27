"""Email templates: sandboxed Jinja2, tracked links and the open pixel.

Templates come from marketers (a configuration's settings) and variables from callers,
so both are untrusted: the sandbox refuses attribute tricks (``__class__``...), HTML is
autoescaped, and rendering is bounded, because deliveries may run in the API process
every tenant shares (the embedded default):

- **size**: no value a template computes may exceed :data:`MAX_VALUE` characters (or
  items): ``*``, ``**``, ``+`` and ``%``, ``~``, the growing string methods (``center``,
  ``ljust``, ``replace``, ``join``, ``format``...) and filters (``center``, ``indent``,
  ``format``, ``replace``, ``join``, ``batch``...) are checked *before* they allocate;
  ``range`` gives at most :data:`MAX_RANGE` numbers; integers stay under
  :data:`MAX_INT_BITS` bits;
- **output**: the render is streamed and stops as soon as it passes :data:`MAX_OUTPUT`
  characters; captured blocks (macros, ``{% set %}`` blocks) are held to the same limit;
- **time**: a render stops after :data:`TIME_LIMIT` seconds (checked at every loop
  iteration, call, operator, attribute lookup and output chunk).

A template that passes a limit fails with :class:`RenderLimitExceeded` (a Jinja
``TemplateError``), which the email connector turns into a permanent delivery failure.
"""

from __future__ import annotations

import contextvars
import functools
import html
import re
import string
import time
import types
from collections.abc import Callable, Iterable, Mapping

from jinja2 import StrictUndefined, TemplateError, nodes
from jinja2.compiler import CodeGenerator, optimizeconst
from jinja2.sandbox import ImmutableSandboxedEnvironment, SecurityError

MAX_OUTPUT = 512 * 1024
#: The largest string (characters), list or tuple (items) a template may compute.
MAX_VALUE = MAX_OUTPUT
#: The most numbers ``range()`` gives, and the most items ``batch``/``slice`` make.
MAX_RANGE = 10_000
#: The largest integer a template may compute, in bits (``2 ** 4096`` is 1,234 digits).
MAX_INT_BITS = 4096
#: The widest field or longest precision of a ``%`` or ``format`` specification.
MAX_FIELD_WIDTH = 1000
#: Seconds one template may take to render.
TIME_LIMIT = 1.0

_HREF = re.compile(r"""(href\s*=\s*)(["'])(.*?)\2""", re.IGNORECASE | re.DOTALL)
#: A printf-style specification: its width and precision (``*`` takes them from args).
_PERCENT_SPEC = re.compile(r"%(?:\([^)]*\))?[-#0 +]*(\*|\d+)?(?:\.(\*|\d*))?[hlL]?[a-zA-Z%]")
_DIGITS = re.compile(r"\d+")
#: (deadline on the monotonic clock, the time limit) of the render in progress.
_deadline: contextvars.ContextVar[tuple[float, float] | None] = contextvars.ContextVar(
    "hpe_template_deadline", default=None
)


class RenderLimitExceeded(SecurityError):
    """A template passed one of the rendering limits (size, output, time)."""


# --- Checks ----------------------------------------------------------------------------


def _tick() -> None:
    running = _deadline.get()
    if running is not None and time.monotonic() > running[0]:
        raise RenderLimitExceeded(f"The template took longer than {running[1]:g} s to render.")


def _check_size(size: int, what: str = "value") -> None:
    if size > MAX_VALUE:
        raise RenderLimitExceeded(
            f"The template would make a {what} of {size:,} characters or items "
            f"(at most {MAX_VALUE:,})."
        )


def _check_int(number: int, what: str) -> None:
    if not isinstance(number, int) or isinstance(number, bool):
        return
    if number > MAX_VALUE:
        raise RenderLimitExceeded(f"{what} {number:,} is too large (at most {MAX_VALUE:,}).")


def _size(value: object) -> int:
    return len(value) if isinstance(value, str | bytes | list | tuple) else 0


def _check_binop(operator: str, left: object, right: object) -> None:
    """Refuse an operation whose result would be too big, before it is computed."""
    ints = isinstance(left, int) and isinstance(right, int)
    if operator == "*":
        if ints:
            _check_bits(left.bit_length() + right.bit_length())
        elif isinstance(left, int) and not isinstance(left, bool):
            _check_size(_size(right) * max(left, 0))
        elif isinstance(right, int) and not isinstance(right, bool):
            _check_size(_size(left) * max(right, 0))
    elif operator == "**" and ints and right > 0 and abs(left) > 1:
        _check_bits(right * left.bit_length())
    elif operator == "+":
        _check_size(_size(left) + _size(right))
    elif operator == "%" and isinstance(left, str):
        _check_percent_format(left)


def _check_bits(bits: int) -> None:
    if bits > MAX_INT_BITS:
        raise RenderLimitExceeded(
            f"The template would make an integer of over {MAX_INT_BITS} bits."
        )


def _check_percent_format(text: str) -> None:
    for width, precision in _PERCENT_SPEC.findall(text):
        for number in (width, precision):
            if number == "*" or (number and int(number) > MAX_FIELD_WIDTH):
                raise RenderLimitExceeded(
                    f"Format widths and precisions are limited to {MAX_FIELD_WIDTH} (no '*')."
                )


def _check_format_string(text: str) -> None:
    """``str.format`` specifications: no nested fields, no huge widths or precisions."""
    try:
        fields = list(string.Formatter().parse(text))
    except ValueError:
        return  # str.format reports it
    for _literal, _name, spec, _conversion in fields:
        if not spec:
            continue
        if "{" in spec or any(int(d) > MAX_FIELD_WIDTH for d in _DIGITS.findall(spec)):
            raise RenderLimitExceeded(
                f"Format widths and precisions are limited to {MAX_FIELD_WIDTH} (no nesting)."
            )


def _joined_size(items: list, separator: object) -> int:
    total = len(separator) * max(len(items) - 1, 0) if isinstance(separator, str) else 0
    for item in items:
        total += len(item) if isinstance(item, str) else len(str(item))
        _check_size(total)
    return total


def _replaced_size(text: str, old: str, new: str, count: int | None) -> int:
    occurrences = text.count(old) if old else len(text) + 1
    if count is not None and count >= 0:
        occurrences = min(occurrences, count)
    return len(text) + occurrences * (len(new) - len(old))


def _check_str_method(method: types.BuiltinMethodType, args: tuple, kwargs: dict) -> None:
    """The growing methods of str (and bytes), checked on their arguments."""
    text, name = method.__self__, method.__name__
    if name in ("center", "ljust", "rjust", "zfill"):
        width = args[0] if args else kwargs.get("width", 0)
        _check_int(width, "A width of")
    elif name == "expandtabs":
        tabsize = args[0] if args else kwargs.get("tabsize", 8)
        if isinstance(tabsize, int):
            _check_size(len(text) * max(tabsize, 1))
    elif name == "replace" and len(args) >= 2:
        old, new = args[0], args[1]
        count = args[2] if len(args) > 2 else kwargs.get("count", -1)
        if type(old) is type(text) and type(new) is type(text):
            _check_size(_replaced_size(text, old, new, count))
    elif name in ("translate", "maketrans"):
        raise RenderLimitExceeded(f"{name}() is not available in templates.")
    elif name in ("format", "format_map") and isinstance(text, str):
        _check_format_string(text)


def _checked_call(target: object, args: tuple, kwargs: dict) -> tuple:
    """The arguments to call ``target`` with, once checked (``str.join``'s iterable is
    read into a list first, to be measured)."""
    method = getattr(target, "__wrapped__", target)  # the sandbox wraps str.format
    if isinstance(method, types.BuiltinMethodType) and isinstance(
        getattr(method, "__self__", None), str | bytes
    ):
        if method.__name__ == "join" and len(args) == 1 and not kwargs:
            items = list(_bounded_loop(args[0]))
            if isinstance(method.__self__, str):
                _joined_size(items, method.__self__)
            return (items,)
        _check_str_method(method, args, kwargs)
    return args


# --- Bounded building blocks -----------------------------------------------------------


def _bounded_range(*args: int) -> range:
    numbers = range(*args)
    if len(numbers) > MAX_RANGE:
        raise RenderLimitExceeded(f"range() gives at most {MAX_RANGE:,} numbers in templates.")
    return numbers


def _bounded_loop(iterable: Iterable) -> Iterable:
    """What every ``{% for %}`` iterates over: the time limit is checked as it goes."""
    for count, item in enumerate(iterable):
        if not count & 63:
            _tick()
        yield item


def _bounded_concat(parts: Iterable[str]) -> str:
    """``environment.concat``: joins captured output (macros, ``{% set %}`` blocks)."""
    parts = list(parts)
    _check_size(sum(map(len, parts)), "captured block")
    return "".join(parts)


def _bounded_join(join: Callable, items: tuple) -> str:
    """The ``~`` operator: sizes checked before the strings are joined."""
    _tick()
    _joined_size(list(items), "")
    joined = join(items)
    _check_size(len(joined))  # escaping may have grown it
    return joined


def _bounded_filter(check: Callable[..., list | None]) -> Callable:
    def wrap(original: Callable) -> Callable:
        # A filter that asks for the eval context or environment gets it first: the check
        # reads the filter's own arguments only.
        skip = 1 if getattr(original, "jinja_pass_arg", None) is not None else 0

        @functools.wraps(original)  # keeps jinja_pass_arg (eval context) as it was
        def bounded(*args, **kwargs):
            _tick()
            value = check(*args[skip:], **kwargs)
            if value is not None:  # the check read the filtered iterable: pass on a copy
                args = (*args[:skip], value, *args[skip + 1 :])
            result = original(*args, **kwargs)
            if isinstance(result, str):
                _check_size(len(result))
            return result

        return bounded

    return wrap


def _center(value, width=80, *_args, **_kwargs):
    _check_int(width, "A width of")


def _indent(s, width=4, *_args, **_kwargs):
    step = len(width) if isinstance(width, str) else width
    if isinstance(step, int):
        _check_int(step, "An indent of")
        _check_size(len(str(s)) + (str(s).count("\n") + 1) * max(step, 0))


def _format(value, *_args, **_kwargs):
    _check_percent_format(str(value))


def _replace(s, old, new, count=None):
    _check_size(_replaced_size(str(s), str(old), str(new), count))


def _join(value, d="", attribute=None):
    items = list(_bounded_loop(value))
    _joined_size(items, d)
    return items


def _batch(value, linecount, *_args, **_kwargs):
    if isinstance(linecount, int) and linecount > MAX_RANGE:
        raise RenderLimitExceeded(f"batch() makes lines of at most {MAX_RANGE:,} items.")


def _slice(value, slices, *_args, **_kwargs):
    if isinstance(slices, int) and slices > MAX_RANGE:
        raise RenderLimitExceeded(f"slice() makes at most {MAX_RANGE:,} slices.")


def _wordwrap(s, width=79, break_long_words=True, wrapstring=None, *_args, **_kwargs):
    if isinstance(wrapstring, str) and isinstance(width, int):
        _check_size(len(str(s)) * (1 + len(wrapstring)) // max(width, 1) + len(str(s)))


_FILTER_CHECKS = {
    "center": _center,
    "indent": _indent,
    "format": _format,
    "replace": _replace,
    "join": _join,
    "batch": _batch,
    "slice": _slice,
    "wordwrap": _wordwrap,
}


class _BoundedCodeGenerator(CodeGenerator):
    @optimizeconst
    def visit_Concat(self, node: nodes.Concat, frame) -> None:  # noqa: N802 - Jinja's name
        # As Jinja writes it, but through environment.hpe_join, which checks the sizes
        # before joining (the str_join/markup_join of the runtime cannot be replaced).
        if frame.eval_ctx.volatile:
            join = "(markup_join if context.eval_ctx.volatile else str_join)"
        elif frame.eval_ctx.autoescape:
            join = "markup_join"
        else:
            join = "str_join"
        self.write(f"environment.hpe_join({join}, (")
        for argument in node.nodes:
            self.visit(argument, frame)
            self.write(", ")
        self.write("))")


class BoundedEnvironment(ImmutableSandboxedEnvironment):
    """Jinja's immutable sandbox with the size and time limits of this module."""

    intercepted_binops = frozenset({"*", "**", "+", "%"})
    code_generator_class = _BoundedCodeGenerator

    def __init__(self, **options):
        super().__init__(**options)
        self.globals["range"] = _bounded_range
        self.globals.pop("lipsum", None)  # lorem ipsum of any length: not for emails
        for name, check in _FILTER_CHECKS.items():
            self.filters[name] = _bounded_filter(check)(self.filters[name])
        self.concat = _bounded_concat
        self.hpe_join = _bounded_join
        self.hpe_loop = _bounded_loop

    def _parse(self, source, name, filename):
        template = super()._parse(source, name, filename)
        # Every loop iterates through hpe_loop, which checks the time limit as it goes
        # (an environment attribute: a template cannot shadow it).
        for loop in template.find_all(nodes.For):
            loop.iter = nodes.Call(
                nodes.EnvironmentAttribute("hpe_loop", lineno=loop.lineno),
                [loop.iter],
                [],
                None,
                None,
                lineno=loop.lineno,
            )
        return template

    def call_binop(self, context, operator, left, right):
        _tick()
        _check_binop(operator, left, right)
        return super().call_binop(context, operator, left, right)

    def call(__self, __context, __obj, *args, **kwargs):  # noqa: N805 - Jinja's signature
        _tick()
        args = _checked_call(__obj, args, kwargs)
        return super().call(__context, __obj, *args, **kwargs)

    def getattr(self, obj, attribute):
        _tick()
        return super().getattr(obj, attribute)

    def getitem(self, obj, argument):
        _tick()
        return super().getitem(obj, argument)


_TEXT = BoundedEnvironment(undefined=StrictUndefined, autoescape=False)
_HTML = BoundedEnvironment(undefined=StrictUndefined, autoescape=True)


def check(source: str, *, html_mode: bool = False) -> str | None:
    """Why a template does not compile, or None."""
    try:
        (_HTML if html_mode else _TEXT).from_string(source)
    except TemplateError as exc:
        return f"Template error: {exc}"
    return None


def render(
    source: str,
    variables: Mapping,
    *,
    html_mode: bool = False,
    time_limit: float = TIME_LIMIT,
) -> str:
    """Render one template within the limits of this module, streamed.

    :raises TemplateError: unknown variable (use ``{{ x | default('') }}``), unsafe
        access, or a limit passed (:class:`RenderLimitExceeded`)
    :raises ValueError: output larger than ``MAX_OUTPUT``
    """
    token = _deadline.set((time.monotonic() + time_limit, time_limit))
    try:
        template = (_HTML if html_mode else _TEXT).from_string(source)
        parts, size = [], 0
        for chunk in template.generate(**variables):
            size += len(chunk)
            if size > MAX_OUTPUT:
                raise ValueError(f"Rendered template is larger than {MAX_OUTPUT} characters.")
            parts.append(chunk)
            _tick()
        return "".join(parts)
    except (OverflowError, RecursionError, MemoryError) as exc:
        raise RenderLimitExceeded(f"The template is too expensive to render: {exc!r}") from exc
    finally:
        _deadline.reset(token)


def rewrite_html_links(body: str, links: Mapping[str, str], tracked: Callable[[str], str]) -> str:
    """Point every ``href`` equal to one of the action's configured URLs at its tracked
    redirect. Other URLs (e.g. from per-user variables) are left as they are: a
    redirect may only lead to a configured URL."""
    by_url = {url: name for name, url in links.items()}

    def replace(match: re.Match) -> str:
        prefix, quote, value = match.groups()
        name = by_url.get(html.unescape(value).strip())
        if name is None:
            return match.group(0)
        return f"{prefix}{quote}{html.escape(tracked(name), quote=True)}{quote}"

    return _HREF.sub(replace, body)


def rewrite_text_links(body: str, links: Mapping[str, str], tracked: Callable[[str], str]) -> str:
    """The same for a plain-text body: configured URLs become tracked URLs."""
    for name, url in sorted(links.items(), key=lambda item: -len(item[1])):
        body = body.replace(url, tracked(name))
    return body


def add_pixel(body: str, pixel_url: str) -> str:
    tag = (
        f'<img src="{html.escape(pixel_url, quote=True)}" width="1" height="1" alt="" '
        'style="display:none">'
    )
    index = body.lower().rfind("</body>")
    return body[:index] + tag + body[index:] if index >= 0 else body + tag
