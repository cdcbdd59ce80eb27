"""The module paths of HPE 0.1 that moved when hpe_core was laid out by the loop's stages.

They stay importable, with a :class:`MovedModuleWarning`, for at least one minor release
(until 0.3): ``import hpe_core.channels`` gives the very module ``hpe_core.deliver.channels``
(one module object, so state and monkeypatches are shared), and ``hpe_core.policy.store``
gives ``hpe_core.decide.policy.store``. New code imports the names plugins need from
``hpe_core`` itself (docs/plugins.md says where each comes from).
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys
import warnings

#: 0.1 path -> where it lives now. A moved package's submodules follow it.
MOVED = {
    "hpe_core.db": "hpe_core.store.db",
    "hpe_core.models": "hpe_core.store.models",
    "hpe_core.workspaces": "hpe_core.tenancy.workspaces",
    "hpe_core.configs": "hpe_core.tenancy.configs",
    "hpe_core.settings": "hpe_core.tenancy.settings",
    "hpe_core.activities": "hpe_core.tenancy.activities",
    "hpe_core.merge_patch": "hpe_core.tenancy.merge_patch",
    "hpe_core.decisions": "hpe_core.decide.decisions",
    "hpe_core.assignment": "hpe_core.decide.assignment",
    "hpe_core.eligibility": "hpe_core.decide.eligibility",
    "hpe_core.features": "hpe_core.decide.features",
    "hpe_core.guardrails": "hpe_core.decide.guardrails",
    "hpe_core.consent": "hpe_core.decide.consent",
    "hpe_core.policy": "hpe_core.decide.policy",
    "hpe_core.channels": "hpe_core.deliver.channels",
    "hpe_core.delivery": "hpe_core.deliver.delivery",
    "hpe_core.webhooks": "hpe_core.deliver.webhooks",
    "hpe_core.outcomes": "hpe_core.learn.outcomes",
    "hpe_core.rewards": "hpe_core.learn.rewards",
    "hpe_core.learning": "hpe_core.learn.learning",
    "hpe_core.imports": "hpe_core.learn.imports",
    "hpe_core.attribution": "hpe_core.learn.attribution",
    "hpe_core.day_documents": "hpe_core.measure.day_documents",
    "hpe_core.rollups": "hpe_core.measure.rollups",
    "hpe_core.metrics": "hpe_core.measure.metrics",
    "hpe_core.stats": "hpe_core.measure.stats",
    "hpe_core.estimators": "hpe_core.measure.estimators",
    "hpe_core.evaluation": "hpe_core.measure.evaluation",
    "hpe_core.measurement": "hpe_core.measure.measurement",
    "hpe_core.recommendations": "hpe_core.recommend.recommendations",
    "hpe_core.recommendation_rules": "hpe_core.recommend.rules",
    "hpe_core.model_rules": "hpe_core.recommend.model_rules",
    "hpe_core.targeting_rules": "hpe_core.recommend.targeting_rules",
    "hpe_core.proposals": "hpe_core.recommend.proposals",
    "hpe_core.circuit_breaker": "hpe_core.recommend.circuit_breaker",
}


class MovedModuleWarning(DeprecationWarning):
    """An HPE 0.1 module path was imported; it goes away in HPE 0.3."""


def new_path(old: str) -> str | None:
    """Where the 0.1 module ``old`` lives now (None: it did not move)."""
    if old in MOVED:
        return MOVED[old]
    parent, _, leaf = old.rpartition(".")
    moved_parent = new_path(parent) if parent.startswith("hpe_core.") else None
    return f"{moved_parent}.{leaf}" if moved_parent else None


class _Alias(importlib.abc.Loader):
    def __init__(self, target: str):
        self.target = target
        self.spec = None

    def create_module(self, spec):
        warnings.warn(
            f"{spec.name} is now {self.target}; its HPE 0.1 path keeps working until HPE "
            f"0.3: import from {self.target} (plugins: from hpe_core, see docs/plugins.md).",
            MovedModuleWarning,
            stacklevel=2,
        )
        module = importlib.import_module(self.target)
        self.spec = module.__spec__
        return module

    def exec_module(self, module) -> None:
        # The import system gave the module the alias's spec: give it its own back.
        module.__spec__ = self.spec


class _MovedFinder(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname, path=None, target=None):
        if not fullname.startswith("hpe_core."):
            return None
        moved = new_path(fullname)
        if moved is None:
            return None
        return importlib.util.spec_from_loader(fullname, _Alias(moved))


def install() -> None:
    """Put the finder first on ``sys.meta_path`` (once): a moved package's submodules
    would otherwise be found again under the old name, as a second module object."""
    if not any(isinstance(finder, _MovedFinder) for finder in sys.meta_path):
        sys.meta_path.insert(0, _MovedFinder())
