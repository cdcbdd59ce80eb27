"""hpe_core.decide.results: the values decide() returns, and where their reasons are listed."""

from __future__ import annotations

import pathlib
import uuid

from hpe_core.decide.results import Decision, NoDecisionReason, RankedAction
from hpe_core.store.vocabulary import Policy, Variant
from hpe_core.tenancy.settings_types import Action

DOCS = pathlib.Path(__file__).parents[3] / "docs"


def _decision(eligible, probabilities) -> Decision:
    return Decision(
        decision_id=uuid.uuid4(),
        action=Action.of({"id": eligible[0]}),
        probability=probabilities[0],
        variant=Variant.TREATMENT,
        policy=Policy.MODEL,
        model_version=3,
        eligible=tuple(eligible),
        probabilities=tuple(probabilities),
    )


def test_the_ranking_is_most_likely_first_and_ties_keep_the_scoring_order():
    decision = _decision(["a", "b", "c", "d"], [0.25, 0.5, 0.25, 0.0])
    assert decision.ranked_pairs() == [("b", 0.5), ("a", 0.25), ("c", 0.25), ("d", 0.0)]
    assert decision.ranking == (
        RankedAction("b", 0.5),
        RankedAction("a", 0.25),
        RankedAction("c", 0.25),
        RankedAction("d", 0.0),
    )
    assert decision.action_id == "a"


def test_every_reason_is_documented_for_api_users():
    """docs/learning.md lists each reason the engine can answer with."""
    text = (DOCS / "learning.md").read_text()
    assert [reason for reason in NoDecisionReason if f"`{reason}`" not in text] == []
