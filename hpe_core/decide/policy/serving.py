"""The models an API process serves from, hot-swapped when a worker saves a new version.

Each process keeps one learner per configuration in memory. The hot path never waits for
the database or for a model load after the first one: at most once per
``check_interval`` seconds a decision looks up the newest version number (one tiny
indexed query), and a newer model is loaded in a background thread and swapped in whole.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
import uuid
from collections.abc import Callable

from sqlalchemy.orm import Session

from hpe_core.decide.policy import store
from hpe_core.decide.policy.learner import Learner
from hpe_core.decide.policy.trials import LearnerState, with_trial

log = logging.getLogger(__name__)


@dataclasses.dataclass
class ServingModel:
    """A loaded model: its version (0 = not trained yet), VW arguments and learner, and
    the state learning kept beside it (None for a model not trained yet: nothing is on
    trial then)."""

    version: int
    args: str
    learner: Learner
    checked_at: float = 0.0
    state: LearnerState | None = None

    def serving_distribution(
        self, scores: list[float], eligible: list[str], trial_share: float
    ) -> list[float]:
        """The distribution the model serves: its scores, with the actions on trial given
        their share (:mod:`hpe_core.decide.policy.trials`)."""
        if self.state is None or trial_share <= 0:
            return scores
        return with_trial(scores, self.state.on_trial(eligible), trial_share)


class ModelRegistry:
    """Per-process cache of serving models.

    :param session_factory: makes sessions for the (rare) version checks and loads
    :param check_interval: seconds between checks for a newer version, per configuration
    """

    def __init__(self, session_factory: Callable[[], Session], check_interval: float = 1.0):
        self._sessions = session_factory
        self.check_interval = check_interval
        self._models: dict[uuid.UUID, ServingModel] = {}
        self._loading: set[uuid.UUID] = set()
        self._lock = threading.Lock()

    def get(self, config_id: uuid.UUID, args: str) -> ServingModel:
        """The model to serve for this configuration with these VW arguments."""
        model = self._models.get(config_id)
        if model is None or model.args != args:
            # First use (or exploration settings changed): load synchronously, once.
            model = self._load(config_id, args)
            with self._lock:
                self._models[config_id] = model
            return model
        now = time.monotonic()
        if now - model.checked_at >= self.check_interval:
            model.checked_at = now
            self._check_newer(config_id, model)
        return model

    def reload(self, config_id: uuid.UUID) -> None:
        """Forget a configuration's model so the next decision loads the newest (rollback)."""
        with self._lock:
            self._models.pop(config_id, None)

    def _check_newer(self, config_id: uuid.UUID, model: ServingModel) -> None:
        with self._sessions() as session:
            newest = store.latest_numbers(session, [config_id]).get(config_id, 0)
        if newest != model.version and config_id not in self._loading:
            self._loading.add(config_id)
            threading.Thread(
                target=self._swap, args=(config_id, model.args), daemon=True, name="hpe-model-swap"
            ).start()

    def _swap(self, config_id: uuid.UUID, args: str) -> None:
        try:
            model = self._load(config_id, args)
            with self._lock:
                current = self._models.get(config_id)
                if current is None or current.args == args:
                    self._models[config_id] = model
        except Exception:  # a failed load keeps the current model serving
            log.exception("could not load the newest model of %s", config_id)
        finally:
            self._loading.discard(config_id)

    def _load(self, config_id: uuid.UUID, args: str) -> ServingModel:
        with self._sessions() as session:
            newest = store.latest(session, config_id)
            learner = store.load_learner(newest, args)
            if learner is not None:
                state = None if newest.state is None else LearnerState.of(newest.state)
                return ServingModel(newest.version, args, learner, time.monotonic(), state)
        # No model yet, or one trained with other arguments: start fresh (version 0).
        return ServingModel(
            0 if newest is None else newest.version, args, Learner(args), time.monotonic()
        )
