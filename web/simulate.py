"""`hpe simulate`: drive a running HPE through its public API with a simulated audience.

The audience (:mod:`hpe_core.simulation`) has a known ground truth, so the printout shows
what personalization earns: treatment vs holdout engagement, and the lift. It is the demo
for new users and the lift benchmark (bench/lift.py). Without a server to talk to, it runs
on a :class:`ThrowawayInstance`, never on the user's own database.
"""

from __future__ import annotations

import dataclasses
import http.client
import json
import random
import shutil
import tempfile
import threading
import time
import urllib.parse
import uuid
from collections.abc import Callable
from pathlib import Path

from hpe_core import scenarios, simulation
from hpe_core.tenancy import workspaces
from web.extensions import app_runtime, app_state

BASE = "/api/v1/041-hyper-personalization-engine"


@dataclasses.dataclass
class Tally:
    decisions: dict = dataclasses.field(default_factory=lambda: {"treatment": 0, "holdout": 0})
    engaged: dict = dataclasses.field(default_factory=lambda: {"treatment": 0, "holdout": 0})
    #: The simulator's true click probability of every served offer, summed per variant:
    #: the ground truth the measured lift (and its interval) should recover.
    expected: dict = dataclasses.field(default_factory=lambda: {"treatment": 0.0, "holdout": 0.0})
    nothing: int = 0
    lock: threading.Lock = dataclasses.field(default_factory=threading.Lock)
    #: With a scenario: one :class:`~hpe_core.scenarios.Served` per decision, for the
    #: scenario's report (what was served when, and its true click probability).
    served: list = dataclasses.field(default_factory=list)

    def rate(self, variant: str) -> float:
        n = self.decisions[variant]
        return self.engaged[variant] / n if n else 0.0

    def lift(self) -> float | None:
        holdout = self.rate("holdout")
        return self.rate("treatment") / holdout - 1 if holdout else None

    def true_rate(self, variant: str) -> float:
        n = self.decisions[variant]
        return self.expected[variant] / n if n else 0.0

    def true_lift(self) -> float | None:
        """Lift from the simulator's own probabilities of what each arm served (no
        Bernoulli noise): the value a sound interval on the measured lift should cover."""
        holdout = self.true_rate("holdout")
        return self.true_rate("treatment") / holdout - 1 if holdout else None


#: What one simulated decision costs (e.g. the send, the placement), for ROI.
SIMULATED_ACTION_COST = 0.02


def simulation_settings(
    *,
    holdout: float,
    wait_seconds: int,
    algorithm: str | None,
    scenario: scenarios.Scenario | None = None,
) -> dict:
    """A configuration for the simulated offers; engagement = a click.

    Conversions weigh 0 in the reward (the model optimizes clicks) but are value events,
    so their order values are the revenue that ROI is computed from.

    :param scenario: its offers at the start (``new-offer`` adds one later)
    """
    actions = scenario_actions(scenario.offers(0) if scenario else simulation.OFFERS)
    settings = {
        "actions": actions,
        "reward": {
            "events": {"open": 0.0, "click": 1.0, "conversion": 0.0, "unsubscribe": -1.0},
            "value_events": ["conversion"],
            "wait_seconds": wait_seconds,
        },
        "holdout": {"percent": holdout},
    }
    if algorithm:
        settings["exploration"] = {"algorithm": algorithm}
    return settings


def scenario_actions(offers) -> list[dict]:
    """The ``actions`` of a configuration for these simulated offers."""
    return [
        {
            "id": offer.id,
            "features": offer.features(),
            "content": {"headline": simulation.headline(offer.id)},
            "cost": SIMULATED_ACTION_COST,
        }
        for offer in offers
    ]


class Client:
    """A keep-alive JSON client for one thread."""

    def __init__(self, base_url: str, key: str):
        parsed = urllib.parse.urlsplit(base_url)
        self._host, self._port = parsed.hostname, parsed.port or 80
        self._headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
        self._connection = http.client.HTTPConnection(self._host, self._port, timeout=30)

    def call(self, method: str, path: str, body: object | None = None) -> tuple[int, object]:
        payload = json.dumps(body) if body is not None else None
        for attempt in range(3):
            try:
                self._connection.request(method, path, payload, self._headers)
                response = self._connection.getresponse()
                data = response.read()
                return response.status, json.loads(data) if data else None
            except (ConnectionError, http.client.HTTPException, TimeoutError):
                self._connection.close()
                self._connection = http.client.HTTPConnection(self._host, self._port, timeout=30)
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")


def create_config(client: Client, **settings_options) -> str:
    status, body = client.call(
        "POST",
        f"{BASE}/",
        {"name": "Simulated audience", "settings": simulation_settings(**settings_options)},
    )
    if status != 201:
        raise RuntimeError(f"could not create the configuration: {status} {body}")
    return body["id"]


def run(
    base_url: str,
    key: str,
    config_id: str,
    *,
    decisions: int,
    clients: int = 2,
    seed: int = 1,
    progress: Callable[[int, Tally], None] | None = None,
    progress_every: int = 5000,
    scenario: scenarios.Scenario | None = None,
    channel: str | None = None,
) -> Tally:
    """Send ``decisions`` touchpoints through the API from ``clients`` threads.

    Each decision's outcomes are drawn from the simulator's ground truth and reported
    at once (a batch per decision), like a channel reporting back.

    :param scenario: a :class:`~hpe_core.scenarios.Scenario` whose truth changes during
        the run (``decisions`` and ``seed`` are then its own). ``new-offer`` adds its offer
        to the configuration (``PATCH``) when the run reaches the change; ``channels``
        lets the engine choose the channel (``"channel": "auto"``).
    :param channel: in ``channels``, send every decision on this channel instead of
        ``auto`` (the fixed-channel comparison)
    """
    if scenario is None:
        scenario = scenarios.Scenario.make("stable", decisions, seed=seed)
    touchpoints = scenario.touchpoints()
    feed_lock = threading.Lock()
    tally = Tally()
    done = [0]
    errors: list[BaseException] = []
    offers = {offer.id: offer for offer in scenario.all_offers()}

    def next_touchpoint(client: Client):
        with feed_lock:
            item = next(touchpoints, None)
            if item is not None and scenario.name == "new-offer" and item[0] == scenario.change_at:
                add_offers(client, config_id, scenario.offers(item[0]))
            return item

    def worker(index: int) -> None:
        client = Client(base_url, key)
        rng = random.Random(f"hpe-sim-outcomes-{seed}-{index}")
        while True:
            item = next_touchpoint(client)
            if item is None:
                return
            position, touch = item
            status, body = client.call(
                "POST",
                f"{BASE}/{config_id}/decisions",
                {
                    "user_id": touch.user.user_id,
                    "channel": touch.channel or channel or "auto",
                    "context": touch.context,
                },
            )
            if status == 200:
                with tally.lock:
                    tally.nothing += 1
                continue
            if status != 201:
                raise RuntimeError(f"decision failed: {status} {body}")
            offer = offers[body["action_id"]]
            served_on = touch.channel or body["channel"]
            events = scenario.outcomes(touch.user, offer, served_on, position, rng)
            if events:
                batch = [{"decision_id": body["decision_id"], **event} for event in events]
                status, answer = client.call(
                    "POST", f"{BASE}/{config_id}/outcomes", {"outcomes": batch}
                )
                if status != 202:
                    raise RuntimeError(f"outcome failed: {status} {answer}")
            clicked = any(event["type"] == "click" for event in events)
            truth = scenario.probability(touch.user, offer, served_on, position)
            served = scenarios.Served(position, body["variant"], offer.id, served_on, truth)
            with tally.lock:
                tally.decisions[body["variant"]] += 1
                tally.engaged[body["variant"]] += clicked
                tally.expected[body["variant"]] += truth
                tally.served.append(served)
                done[0] += 1
                count = done[0]
            if progress and count % progress_every == 0:
                progress(count, tally)

    def guarded(index: int) -> None:
        try:
            worker(index)
        except BaseException as exc:  # noqa: BLE001 - reported by the caller
            errors.append(exc)

    threads = [threading.Thread(target=guarded, args=(i,)) for i in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    return tally


def add_offers(client: Client, config_id: str, offers) -> None:
    """Give the configuration these offers (a ``PATCH`` of its actions)."""
    status, body = client.call(
        "PATCH", f"{BASE}/{config_id}", {"settings": {"actions": scenario_actions(offers)}}
    )
    if status != 200:
        raise RuntimeError(f"could not add the new offer: {status} {body}")


class ThrowawayInstance:
    """An HPE for one run, in a new temporary folder: its own SQLite database, jobs inline.

    A demo must not leave a ``simulator-…`` workspace in the user's database, so whatever
    HPE_DATABASE_URL, HPE_REDIS_URL or instance/config.py say, this instance uses neither
    their database nor their Redis. Plugins and their settings still come from the user's
    configuration (the channels the simulated offers need).
    """

    def __init__(self) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="hpe-simulate-"))
        self.database_url = f"sqlite:///{self.folder / 'hpe.db'}"
        self.app = None
        self.workspace_id: str | None = None
        self.key: str | None = None
        self._stop: Callable[[], None] | None = None

    def config(self) -> dict:
        """``create_app`` overrides: they win over every other configuration layer."""
        return {
            "DATABASE_URL": self.database_url,
            "REDIS_URL": None,
            "AUTO_MIGRATE": True,  # a new, empty database
            "INLINE_SWEEPER": True,  # nobody runs `hpe worker` for it: learn in-process
        }

    def start(self, make_app: Callable[..., object]) -> str:
        """Build the app with ``make_app(**config)``, create a simulator workspace (its key
        in :attr:`key`) and serve the app on a loopback port.

        :returns: the server's base URL
        """
        self.app = make_app(**self.config())
        with self.app.app_context():
            session = app_runtime(self.app).sessions()
            try:
                self.workspace_id = f"simulator-{uuid.uuid4().hex[:6]}"
                workspaces.create_workspace(session, self.workspace_id)
                _row, self.key = workspaces.create_key(session, self.workspace_id, name="simulator")
                session.commit()
            finally:
                session.close()
        url, self._stop = start_embedded_server(self.app)
        return url

    def close(self, *, keep: bool = False) -> None:
        """Stop serving and learning, close the database, and delete the folder unless
        ``keep``. Safe to call after a failed or partial :meth:`start`.

        :raises OSError: if the folder could not be deleted
        """
        if self._stop is not None:
            self._stop()
            self._stop = None
        if self.app is not None:
            sweeper = app_state(self.app).sweeper
            if sweeper is not None:
                sweeper.stop()
            app_runtime(self.app).engine.dispose()
            self.app = None
        if not keep and self.folder.exists():
            shutil.rmtree(self.folder)


def start_embedded_server(app) -> tuple[str, Callable[[], None]]:
    """Serve ``app`` on a free loopback port in a thread; returns (base URL, stop)."""
    from werkzeug.serving import make_server

    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True, name="hpe-sim-server")
    thread.start()
    return f"http://127.0.0.1:{server.server_port}", server.shutdown


def wait_for_learning(client: Client, config_id: str, timeout: float = 60.0) -> int:
    """Wait until the newest model version stops changing; returns its number."""
    deadline, last, stable_since = time.monotonic() + timeout, None, time.monotonic()
    while time.monotonic() < deadline:
        _status, versions = client.call("GET", f"{BASE}/{config_id}/models?page_size=1")
        newest = versions[0]["version"] if versions else 0
        if newest != last:
            last, stable_since = newest, time.monotonic()
        elif time.monotonic() - stable_since > 3:
            return newest
        time.sleep(0.5)
    return last or 0
