"""Response headers for the dashboard's pages.

The Content-Security-Policy allows scripts, styles, images and fetches from this origin
only: no inline script or style anywhere (chart data travels in ``<script
type="application/json">`` blocks, which are data, not code; interval bars are SVG
attributes, not style attributes). ``frame-ancestors 'none'`` stops click-jacking.
"""

from __future__ import annotations

from flask import Response

CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "font-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    )
)

HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=(), payment=()",
}


def add(response: Response) -> Response:
    """``after_request`` of the dashboard: the headers above, and no caching of pages
    that show a workspace's numbers (a shared computer's back button)."""
    for name, value in HEADERS.items():
        response.headers.setdefault(name, value)
    if response.mimetype == "text/html":
        response.headers.setdefault("Cache-Control", "no-store")
    return response
