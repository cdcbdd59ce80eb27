"""Model versions in the database: save, find the newest, list, roll back, prune.

Models are stored as blobs in the ``..._model_versions`` table, so every API process and
worker on every machine sees the same versions without a shared file system.

A blob is read only where a learner is built from it (:func:`load_learner`: serving's
model load, learning's resume, evaluation) and where a rollback copies it. Everything
else (the newest version's number and checksum for every learn batch, the version list,
pruning) reads the other columns: a model is megabytes, its metadata a few bytes.
"""

from __future__ import annotations

import hashlib
import uuid

import vowpalwabbit
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session, defer, undefer

from hpe_core.decide.policy.exploration import vw_arguments
from hpe_core.decide.policy.learner import Learner
from hpe_core.errors import Conflict, NotFound
from hpe_core.store.models import ModelVersion
from hpe_core.tenancy import activities, configs
from hpe_core.tenancy.workspaces import Principal

#: Versions kept per configuration; older ones are pruned after each save.
KEEP_VERSIONS = 30
#: The activity a rollback is logged with (``{"to_version", "new_version"}``).
MODEL_ROLLED_BACK = "model.rolled_back"


def vw_version() -> str:
    return getattr(vowpalwabbit, "__version__", None) or _dist_version()


def _dist_version() -> str:
    from importlib.metadata import version

    return version("vowpalwabbit")


def latest(session: Session, config_id: uuid.UUID) -> ModelVersion | None:
    """The newest version of a configuration's model, or None before the first learn.

    Its blob is deferred: reading ``.model`` (as :func:`load_learner` does) loads it with
    one more query, while the session is open.
    """
    return session.scalars(
        select(ModelVersion)
        .options(defer(ModelVersion.model))
        .where(ModelVersion.config_id == config_id)
        .order_by(ModelVersion.version.desc())
        .limit(1)
    ).first()


def load_learner(newest: ModelVersion | None, args: str) -> Learner | None:
    """The learner of ``newest`` when it was trained with ``args``, else None.

    A model trained with other VW arguments (the exploration settings changed) is never
    served, extended or evaluated: callers start a fresh ``Learner(args)`` instead. Only
    then is the blob read (deferred by :func:`latest`: ``newest`` must still be attached
    to its open session).
    """
    if newest is None or newest.vw_args != args:
        return None
    return Learner.load(args, newest.model)


def latest_numbers(session: Session, config_ids: list[uuid.UUID]) -> dict[uuid.UUID, int]:
    """Newest version number per configuration (one small query for many configs)."""
    if not config_ids:
        return {}
    rows = session.execute(
        select(ModelVersion.config_id, func.max(ModelVersion.version))
        .where(ModelVersion.config_id.in_(config_ids))
        .group_by(ModelVersion.config_id)
    )
    return dict(rows.all())


def save(
    session: Session,
    config_id: uuid.UUID,
    *,
    args: str,
    model: bytes,
    examples: int,
    previous: ModelVersion | None,
    source: str = "learn",
    state: dict | None = None,
) -> ModelVersion:
    """Add the next version. Two writers racing for the same number: one fails (unique).

    :param state: what learning keeps beside the model
        (:class:`hpe_core.decide.policy.trials.LearnerState`)
    """
    version = ModelVersion(
        config_id=config_id,
        version=(previous.version if previous else 0) + 1,
        vw_args=args,
        vw_version=vw_version(),
        checksum=hashlib.sha256(model).hexdigest(),
        model=model,
        examples=examples,
        total_examples=(previous.total_examples if previous else 0) + examples,
        source=source,
        state=state,
    )
    session.add(version)
    session.flush()
    return version


def list_versions(session: Session, config_id: uuid.UUID):
    """A statement for the versions of a configuration, newest first (without blobs).

    The blob is not selected, and reading ``.model`` from a listed version raises
    instead of loading it: a page of versions must never cost a query per model.
    """
    return (
        select(ModelVersion)
        .options(defer(ModelVersion.model, raiseload=True))
        .where(ModelVersion.config_id == config_id)
        .order_by(ModelVersion.version.desc())
    )


def rollback(
    session: Session, config_id: uuid.UUID, version: int, *, current_args: str
) -> ModelVersion:
    """Make an earlier version current again by saving a copy of it as the newest.

    Learning then continues from the restored model, and the history stays linear:
    nothing is deleted, and the copy records where it came from (``rollback:<n>``).

    :param current_args: the VW arguments of the configuration's current settings
    :raises NotFound: if the configuration has no such version
    :raises Conflict: if that version was trained with other exploration settings (it
        could not serve them: restore those settings first)
    """
    # The one read that needs the blob: the copy carries it.
    source = session.scalars(
        select(ModelVersion)
        .options(undefer(ModelVersion.model))
        .where(ModelVersion.config_id == config_id, ModelVersion.version == version)
    ).first()
    if source is None:
        raise NotFound(f"No model version {version}.", {"version": ["Unknown version."]})
    if source.vw_args != current_args:
        raise Conflict(
            f"Model version {version} was trained with other exploration settings "
            f"({source.vw_args}); set them back before rolling back to it.",
            {"version": ["Trained with other exploration settings."]},
        )
    newest = latest(session, config_id)
    restored = save(
        session,
        config_id,
        args=source.vw_args,
        model=source.model,
        examples=0,
        previous=newest,
        source=f"rollback:{version}",
        # The learner's state goes with its model: the detector's reference and the
        # trials are those of the restored version.
        state=source.state,
    )
    # The copy holds what the restored model learned, not what the replaced one had.
    restored.total_examples = source.total_examples
    session.flush()
    return restored


def prune(session: Session, config_id: uuid.UUID, keep: int = KEEP_VERSIONS) -> int:
    """Delete all but the newest ``keep`` versions. :returns: how many were deleted."""
    newest = latest_numbers(session, [config_id]).get(config_id)
    if newest is None or newest <= keep:
        return 0
    result = session.execute(
        delete(ModelVersion).where(
            ModelVersion.config_id == config_id, ModelVersion.version <= newest - keep
        )
    )
    return result.rowcount or 0


def roll_back_configuration(
    session: Session, principal: Principal, config_id: uuid.UUID, version: int
) -> ModelVersion:
    """Make ``version`` the serving model of a configuration again, logged as the caller.

    The REST API and the dashboard both call this. Not committed: the caller commits,
    then tells its decision engine to reload the model.

    :raises NotFound: unknown (or another workspace's) configuration or version
    :raises Conflict: that version was trained with other exploration settings
    """
    config = configs.get(session, principal, config_id)
    restored = rollback(
        session,
        config.id,
        version,
        current_args=vw_arguments(configs.settings_of(config).exploration),
    )
    activities.record(
        session,
        workspace_id=config.workspace_id,
        config_id=config.id,
        type=MODEL_ROLLED_BACK,
        actor=principal.actor,
        data={"to_version": version, "new_version": restored.version},
    )
    return restored
