"""The VW command line for a configuration's exploration settings.

The string is recorded with every model version, so it must be a pure function of the
settings: same settings, same string, in a fixed order, with every VW default we rely on
spelled out (a VW upgrade that changes a default must not silently change a recorded
model's meaning).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

from hpe_core.decide.features import ACTION_NAMESPACE, CONTEXT_NAMESPACE
from hpe_core.tenancy.settings import EXPLORATION_ALGORITHMS, ExplorationSchema
from hpe_core.tenancy.settings_types import Exploration, ExplorationAlgorithm

#: Hash bits of the weight table: 2**18 weights, a few MB per model, few collisions for
#: hundreds of context features crossed with up to 1000 actions.
HASH_BITS = 18

# Fixed for every configuration. cb_type mtr is VW's default for cb_explore_adf; named
# here because the string is recorded.
_BASE = (
    "--cb_explore_adf",
    "--cb_type",
    "mtr",
    "--quiet",
    "-b",
    str(HASH_BITS),
    "-q",
    CONTEXT_NAMESPACE + ACTION_NAMESPACE,
)


def exploration_defaults() -> dict:
    """Return the exploration block with every default filled in (the settings schema's)."""
    return ExplorationSchema().load({})


def vw_arguments(exploration: Exploration | Mapping) -> str:
    """Build the VW command line for one configuration's exploration block.

    Missing keys take the settings defaults; keys that the chosen algorithm does not use
    are left out of the string, so changing them does not change the model's identity.

    :param exploration: the settings' typed ``exploration``, or the block as a document
        (e.g. ``{"algorithm": "bag"}``)
    :returns: e.g. ``"--cb_explore_adf --cb_type mtr --quiet -b 18 -q ca -l 0.5
        --power_t 0.5 --squarecb --gamma_scale 10.0"``
    :raises ValueError: for an unknown algorithm
    """
    if isinstance(exploration, Exploration):
        exploration = dataclasses.asdict(exploration)
    merged = {**exploration_defaults(), **exploration}
    algorithm = merged["algorithm"]
    args = [
        *_BASE,
        "-l",
        _number(merged["learning_rate"]),
        "--power_t",
        _number(merged["power_t"]),
    ]
    if algorithm == ExplorationAlgorithm.SQUARECB:
        args += ["--squarecb", "--gamma_scale", _number(merged["gamma_scale"])]
    elif algorithm == ExplorationAlgorithm.EPSILON:
        args += ["--epsilon", _number(merged["epsilon"])]
    elif algorithm == ExplorationAlgorithm.BAG:
        # bag mixes epsilon-greedy into the bootstrap vote; without it a unanimous bag
        # would never explore.
        args += ["--bag", str(int(merged["bag_size"])), "--epsilon", _number(merged["epsilon"])]
    elif algorithm == ExplorationAlgorithm.COVER:
        args += ["--cover", str(int(merged["cover_size"])), "--epsilon", _number(merged["epsilon"])]
    else:
        raise ValueError(
            f"Unknown exploration algorithm {algorithm!r}; use one of "
            f"{', '.join(EXPLORATION_ALGORITHMS)}."
        )
    return " ".join(args)


def _number(value: float) -> str:
    # repr of a float is the shortest round-tripping form: stable across runs/platforms.
    return repr(float(value))
