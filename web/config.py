"""Default configuration. Every key can be overridden by an ``HPE_<KEY>`` environment
variable (values are parsed as JSON when they look like JSON), an ``instance/config.py``,
or the ``test_config`` given to ``create_app``."""


class DefaultConfig:
    #: SQLAlchemy URL. None = SQLite file ``hpe.db`` in the instance folder (the embedded
    #: default). PostgreSQL: ``postgresql+psycopg://user:pass@host/db`` (``postgresql://``
    #: is accepted too).
    DATABASE_URL = None
    #: Migrate the database on start. None = only for SQLite (the embedded default);
    #: on PostgreSQL operators run ``hpe db upgrade`` as a deploy step.
    AUTO_MIGRATE = None
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
    #: Signs tracking links and sessions; set it in production.
    SECRET_KEY = "dev-only-change-me"
    #: None = load every installed plugin; a list = only these entry-point names.
    LOAD_PLUGINS = None
    #: Entry-point names never to load.
    BLOCKED_PLUGINS: list = []
    #: Per-plugin settings, e.g. ``{"email": {"smtp_host": "..."}}``.
    PLUGINS: dict = {}
    #: Largest accepted request body, in bytes (imports are NDJSON and can be big).
    MAX_CONTENT_LENGTH = 64 * 1024 * 1024

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
        "components": {
            "securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer"}}
        },
        "security": [{"bearerAuth": []}],
    }
