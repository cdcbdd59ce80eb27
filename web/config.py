"""Default configuration. Every key can be overridden by an ``HPE_<KEY>`` environment
variable (values are parsed as JSON when they look like JSON), an ``instance/config.py``,
or the ``test_config`` given to ``create_app``."""

from hpe_core.runtime import Defaults


class DefaultConfig(Defaults):
    """The operational settings of :class:`hpe_core.runtime.Defaults` (shared with
    ``hpe worker``), plus the web app's own."""

    # The dashboard's sign-in cookie (Flask's signed session).
    SESSION_COOKIE_NAME = "hpe_session"
    SESSION_COOKIE_HTTPONLY = True
    SESSION_COOKIE_SAMESITE = "Lax"
    #: None: Secure whenever the request came over HTTPS; True/False to force it.
    SESSION_COOKIE_SECURE = None
    #: How long a dashboard sign-in lasts, in seconds (12 hours: a working day).
    PERMANENT_SESSION_LIFETIME = 12 * 3600
    #: How many reverse proxies in front of HPE to trust for X-Forwarded-For/-Proto/-Host
    #: (werkzeug's ProxyFix). 0: none. Behind one TLS-terminating proxy set 1, so that
    #: cookies are marked Secure and sign-in throttling sees the client's address.
    PROXY_FIX = 0
    #: Days after a person's first sign-in before the dashboard asks how satisfied they
    #: are (SC-003's survey); then at most once every 30 days.
    SURVEY_AFTER_DAYS = 30

    # --- Limits (docs/operations.md, "Limits") ---
    #: The largest outcome ``value`` accepted, in absolute value (a bigger one is a 422):
    #: one bogus conversion must not become the revenue of a configuration.
    MAX_OUTCOME_VALUE = 1_000_000.0
    #: Requests per API key, and per workspace (all its keys), in the ``limits`` notation:
    #: ``"1000/second"``, several joined by ``;`` (``"1000/second;30000/minute"``); empty:
    #: no limit. Counted in Redis with ``REDIS_URL`` (all processes together), else in each
    #: process. Over it: 429 with ``Retry-After``.
    RATE_LIMIT_PER_KEY = "1000/second"
    RATE_LIMIT_PER_WORKSPACE = "2000/second"
    #: Other limits for some workspaces: ``{"acme": {"per_key": "5000/second",
    #: "per_workspace": ""}}`` (a key left out keeps the default).
    WORKSPACE_LIMITS: dict = {}
    #: The largest request body per endpoint or blueprint, in bytes (others:
    #: ``MAX_CONTENT_LENGTH``). A bigger one is a 413 before it is read.
    BODY_LIMITS: dict = {"decisions.Decisions": 64 * 1024, "outcomes": 1024 * 1024}

    # flask-smorest / OpenAPI
    API_TITLE = "Hyper-Personalization Engine"
    API_VERSION = "v1"
    OPENAPI_VERSION = "3.0.3"
    OPENAPI_URL_PREFIX = "/api/v1"
    OPENAPI_JSON_PATH = "openapi.json"
    OPENAPI_SWAGGER_UI_PATH = "/docs"
    #: Swagger UI assets are vendored in web/static/swagger-ui/ (no CDN); Flask serves /static.
    OPENAPI_SWAGGER_UI_URL = "/static/swagger-ui/"
    API_SPEC_OPTIONS = {
        "info": {
            "description": (
                "Choose the offer most likely to engage one person at one touchpoint, learn "
                "from what happens next, and prove the lift against an always-on holdout."
            )
        },
        "components": {"securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer"}}},
        "security": [{"bearerAuth": []}],
    }
