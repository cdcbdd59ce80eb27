"""Policies: the VW contextual-bandit learner and the exploration settings it runs with."""

from hpe_core.decide.policy.exploration import exploration_defaults, vw_arguments
from hpe_core.decide.policy.learner import Learner, LearnExample

__all__ = ["LearnExample", "Learner", "exploration_defaults", "vw_arguments"]
