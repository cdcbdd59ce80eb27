"""Error pages for people (the API keeps its JSON shape: :mod:`web.errors`)."""

from __future__ import annotations

from flask import make_response, render_template
from werkzeug.http import HTTP_STATUS_CODES

from web.dashboard import security_headers

_TITLES = {
    400: "That request could not be used",
    403: "You may not do that",
    404: "Page not found",
    429: "Too many attempts",
    500: "Something went wrong",
    503: "HPE is unavailable for a moment",
}


def error_page(code: int, message: str, headers: dict):
    """The error page, with the dashboard's security headers (it is a page like any)."""
    title = _TITLES.get(code) or HTTP_STATUS_CODES.get(code, "Error")
    body = render_template("error.html", code=code, title=title, message=message)
    response = security_headers.add(_response(body, code))
    response.headers.update(headers)
    return response


def _response(body: str, code: int):
    response = make_response(body, code)
    response.mimetype = "text/html"
    return response
