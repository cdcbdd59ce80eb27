"""Email templates: sandboxed Jinja2, tracked links and the open pixel.

Templates come from marketers (a configuration's settings) and variables from callers,
so both are untrusted: the sandbox refuses attribute tricks (``__class__``...), HTML is
autoescaped, and output is size-limited.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable, Mapping

from jinja2 import StrictUndefined, TemplateError
from jinja2.sandbox import ImmutableSandboxedEnvironment

MAX_OUTPUT = 512 * 1024

_TEXT = ImmutableSandboxedEnvironment(undefined=StrictUndefined, autoescape=False)
_HTML = ImmutableSandboxedEnvironment(undefined=StrictUndefined, autoescape=True)
_HREF = re.compile(r"""(href\s*=\s*)(["'])(.*?)\2""", re.IGNORECASE | re.DOTALL)


def check(source: str, *, html_mode: bool = False) -> str | None:
    """Why a template does not compile, or None."""
    try:
        (_HTML if html_mode else _TEXT).from_string(source)
    except TemplateError as exc:
        return f"Template error: {exc}"
    return None


def render(source: str, variables: Mapping, *, html_mode: bool = False) -> str:
    """Render one template.

    :raises TemplateError: unknown variable (use ``{{ x | default('') }}``), unsafe access
    :raises ValueError: output larger than ``MAX_OUTPUT``
    """
    output = (_HTML if html_mode else _TEXT).from_string(source).render(**variables)
    if len(output) > MAX_OUTPUT:
        raise ValueError(f"Rendered template is larger than {MAX_OUTPUT} characters.")
    return output


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
