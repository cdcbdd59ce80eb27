"""Personalizer's model file and log properties, on HPE's model versions and decision log.

- **Export** (``GET /model``): the newest model version trained with the current
  exploration settings, as VW saved it (an untrained model when there is none yet).
  With ``signed=true``, a zip of ``model.vw`` and ``manifest.json`` (configuration,
  version, VW arguments and version, SHA-256 of the model) with ``signature``: the
  HMAC-SHA256 of the manifest under the instance's ``SECRET_KEY``.
- **Import** (``PUT /model``): a signed export of this HPE (or of one sharing its
  ``SECRET_KEY``) whose VW arguments are the configuration's current ones. It is saved
  as the newest model version (``source: import``) and served within a second. Anything
  else is refused: an unsigned VW file, a Personalizer export (trained on Personalizer's
  own feature layout, which HPE's models do not share) or a tampered file.
- **Reset** (``DELETE /model``): an untrained model saved as the newest version
  (``source: reset``); the earlier versions stay, for ``POST /{id}/model/rollback``.
- **Properties**: the newest version's time; the log's first and last decision times.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import hmac
import io
import json
import uuid
import zipfile

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from hpe_core.compat.errors import invalid
from hpe_core.decide.policy import store
from hpe_core.decide.policy.exploration import vw_arguments
from hpe_core.decide.policy.learner import Learner
from hpe_core.store.models import Config, Decision, ModelVersion
from hpe_core.tenancy import activities, configs
from hpe_core.tenancy.configs import settings_of
from hpe_core.tenancy.workspaces import Principal

MODEL_IMPORTED = "model.imported"
MODEL_RESET = "model.reset"
MANIFEST_FORMAT = "hpe-model/1"
#: Largest model file an import reads.
MAX_MODEL_BYTES = 64 * 1024 * 1024


@dataclasses.dataclass(frozen=True, slots=True)
class ModelFile:
    """A model as exported: its bytes, and the version they are (0: untrained)."""

    data: bytes
    version: int


@dataclasses.dataclass(frozen=True, slots=True)
class Times:
    """Personalizer's model or log properties: two times (None: nothing yet)."""

    first: dt.datetime | None
    last: dt.datetime | None


def export(
    session: Session,
    principal: Principal,
    config_id: uuid.UUID,
    *,
    signed: bool,
    secret_key: str,
) -> ModelFile:
    """The configuration's current model, as VW bytes or as a signed zip.

    :raises NotFound: unknown configuration, or another workspace's
    """
    config = configs.get(session, principal, config_id)
    args = vw_arguments(settings_of(config).exploration)
    newest = store.latest(session, config.id)
    if newest is not None and newest.vw_args == args:
        data, version = newest.model, newest.version
    else:
        with Learner(args) as learner:
            data, version = learner.save(), 0
    if not signed:
        return ModelFile(data, version)
    manifest = json.dumps(
        {
            "format": MANIFEST_FORMAT,
            "config_id": str(config.id),
            "version": version,
            "vw_args": args,
            "vw_version": store.vw_version(),
            "sha256": hashlib.sha256(data).hexdigest(),
        },
        sort_keys=True,
    ).encode()
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("model.vw", data)
        archive.writestr("manifest.json", manifest)
        archive.writestr("signature", _signature(secret_key, manifest))
    return ModelFile(buffer.getvalue(), version)


def import_model(
    session: Session,
    principal: Principal,
    config_id: uuid.UUID,
    data: bytes,
    *,
    secret_key: str,
) -> int:
    """Save a signed export as the newest model version (not committed).

    :returns: the new version's number
    :raises InvalidInput: not a signed HPE export (``InvalidModelImportFormat``), a bad
        signature or checksum (``InvalidModelImportSignature``), or other VW arguments
        than the configuration's current ones
    """
    config = configs.get(session, principal, config_id)
    manifest, model = _read_signed(data, secret_key)
    args = vw_arguments(settings_of(config).exploration)
    if manifest.get("vw_args") != args:
        raise invalid(
            "InvalidModelMetadata",
            f"The model was trained with other learning settings ({manifest.get('vw_args')}) "
            f"than this configuration's ({args}); set the policy to them first.",
            "model",
        )
    try:
        Learner.load(args, model).close()
    except Exception as exc:  # noqa: BLE001 - VW's errors are plain RuntimeErrors
        raise invalid(
            "InvalidModelImportFormat", f"VW cannot load the model: {exc}", "model"
        ) from exc
    saved = store.save(
        session,
        config.id,
        args=args,
        model=model,
        examples=0,
        previous=store.latest(session, config.id),
        source="import",
    )
    activities.record(
        session,
        workspace_id=config.workspace_id,
        config_id=config.id,
        type=MODEL_IMPORTED,
        actor=principal.actor,
        data={
            "version": saved.version,
            "from_config": manifest.get("config_id"),
            "from_version": manifest.get("version"),
        },
    )
    store.prune(session, config.id)
    return saved.version


def reset(session: Session, principal: Principal, config_id: uuid.UUID) -> int:
    """Save an untrained model as the newest version (not committed).

    :returns: the new version's number
    """
    config = configs.get(session, principal, config_id)
    args = vw_arguments(settings_of(config).exploration)
    with Learner(args) as learner:
        data = learner.save()
    saved = store.save(
        session,
        config.id,
        args=args,
        model=data,
        examples=0,
        previous=store.latest(session, config.id),
        source="reset",
    )
    saved.total_examples = 0
    activities.record(
        session,
        workspace_id=config.workspace_id,
        config_id=config.id,
        type=MODEL_RESET,
        actor=principal.actor,
        data={"version": saved.version},
    )
    store.prune(session, config.id)
    return saved.version


def model_times(session: Session, principal: Principal, config_id: uuid.UUID) -> Times:
    """When the first and the newest model versions were saved (the configuration's
    creation when none was)."""
    config = configs.get(session, principal, config_id)
    newest = store.latest(session, config.id)
    if newest is None:
        return Times(config.created_at, config.created_at)
    first = session.scalar(
        select(func.min(ModelVersion.created_at)).where(ModelVersion.config_id == config.id)
    )
    return Times(first, newest.created_at)


def log_times(session: Session, principal: Principal, config_id: uuid.UUID) -> Times:
    """The first and the last decision of the configuration's log (None: none)."""
    config: Config = configs.get(session, principal, config_id)
    first, last = session.execute(
        select(func.min(Decision.created_at), func.max(Decision.created_at)).where(
            Decision.config_id == config.id
        )
    ).one()
    return Times(first, last)


def _signature(secret_key: str, manifest: bytes) -> bytes:
    return hmac.new(secret_key.encode(), manifest, hashlib.sha256).hexdigest().encode()


def _read_signed(data: bytes, secret_key: str) -> tuple[dict, bytes]:
    """The manifest and the model of a signed export, checked."""
    if len(data) > MAX_MODEL_BYTES:
        raise invalid("InvalidModelImportFormat", "The model file is too large.", "model")
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            names = set(archive.namelist())
            if not {"model.vw", "manifest.json", "signature"} <= names:
                raise KeyError("missing files")
            if archive.getinfo("model.vw").file_size > MAX_MODEL_BYTES:
                raise ValueError("model.vw is too large")
            manifest_bytes = archive.read("manifest.json")
            signature = archive.read("signature")
            model = archive.read("model.vw")
    except (zipfile.BadZipFile, KeyError, ValueError, OSError, EOFError) as exc:
        raise invalid(
            "InvalidModelImportFormat",
            "HPE imports the signed model files it exports (GET model?signed=true): a zip of "
            "model.vw, manifest.json and signature. Unsigned VW files and Personalizer's "
            "exports are not taken.",
            "model",
        ) from exc
    if not hmac.compare_digest(signature.strip(), _signature(secret_key, manifest_bytes)):
        raise invalid(
            "InvalidModelImportSignature",
            "The model file's signature does not verify: it was exported by an HPE with "
            "another SECRET_KEY, or changed since.",
            "model",
        )
    try:
        manifest = json.loads(manifest_bytes)
    except ValueError as exc:
        raise invalid("InvalidModelImportFormat", "Unreadable manifest.json.", "model") from exc
    if (
        not isinstance(manifest, dict)
        or manifest.get("format") != MANIFEST_FORMAT
        or manifest.get("sha256") != hashlib.sha256(model).hexdigest()
    ):
        raise invalid(
            "InvalidModelImportSignature",
            "The model does not match its manifest (format or checksum).",
            "model",
        )
    return manifest, model
