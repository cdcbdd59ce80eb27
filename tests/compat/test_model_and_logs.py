"""The model file and the log through Microsoft's administration client: export, signed
import, reset, properties; what HPE does not do answers 501 (docs/personalizer.md)."""

from __future__ import annotations

import io
import json
import uuid
import zipfile

import pytest
from azure.core.exceptions import HttpResponseError

from hpe_core.decide.policy.learner import Learner
from hpe_core.store.models import ModelVersion
from tests.compat.conftest import assert_personalizer_error, rank_request
from web.extensions import app_runtime


def _versions(loop) -> list[ModelVersion]:
    session = app_runtime(loop.app).sessions()
    try:
        return list(
            session.query(ModelVersion)
            .filter(ModelVersion.config_id == uuid.UUID(loop.config_id))
            .order_by(ModelVersion.version)
        )
    finally:
        session.close()


def _trained(loop):
    client = loop.personalizer()
    for n in range(6):
        answer = client.rank(rank_request(eventId=f"m{n}"))
        client.reward(
            answer["eventId"], {"value": 1.0 if answer["rewardActionId"] == "pasta" else 0}
        )
    assert loop.learn() == 6
    return loop


def test_the_export_is_the_newest_model_as_vw_saved_it(loop):
    admin = loop.admin()
    untrained = b"".join(admin.export_model())
    Learner.load(admin.get_policy()["arguments"], untrained).close()  # a VW model
    _trained(loop)
    [version] = _versions(loop)
    assert b"".join(admin.export_model()) == version.model


def test_a_signed_export_imports_as_a_new_version(loop):
    """Export signed, train further, import the export: it is the newest version again."""
    admin = _trained(loop).admin()
    signed = b"".join(admin.export_model(signed=True))
    with zipfile.ZipFile(io.BytesIO(signed)) as archive:
        assert set(archive.namelist()) == {"model.vw", "manifest.json", "signature"}
        manifest = json.loads(archive.read("manifest.json"))
        exported = archive.read("model.vw")
    assert manifest["config_id"] == loop.config_id and manifest["version"] == 1
    admin.import_model(signed)
    versions = _versions(loop)
    assert [v.source for v in versions] == ["learn", "import"]
    assert versions[-1].model == exported
    properties = admin.get_model_properties()
    assert properties["lastModifiedTime"] >= properties["creationTime"]


@pytest.mark.parametrize("what", ["unsigned", "tampered", "foreign", "garbage"])
def test_only_signed_hpe_exports_are_imported(loop, what):
    admin = loop.admin()
    signed = b"".join(admin.export_model(signed=True))
    if what == "unsigned":
        body, code = b"".join(admin.export_model()), "InvalidModelImportFormat"
    elif what == "garbage":
        body, code = b"\x00not a model", "InvalidModelImportFormat"
    else:
        buffer = io.BytesIO()
        with zipfile.ZipFile(io.BytesIO(signed)) as source, zipfile.ZipFile(buffer, "w") as out:
            for name in source.namelist():
                data = source.read(name)
                if what == "tampered" and name == "model.vw":
                    data = data + b"x"
                if what == "foreign" and name == "signature":
                    data = b"0" * 64
                out.writestr(name, data)
        body, code = buffer.getvalue(), "InvalidModelImportSignature"
    with pytest.raises(HttpResponseError) as raised:
        admin.import_model(body)
    assert_personalizer_error(raised.value, 400, code)
    assert _versions(loop) == []


def test_an_export_for_other_learning_settings_is_refused(loop):
    admin = loop.admin()
    signed = b"".join(admin.export_model(signed=True))
    admin.update_policy({"name": "eps", "arguments": "--cb_explore_adf --epsilon 0.3"})
    with pytest.raises(HttpResponseError) as raised:
        admin.import_model(signed)
    assert_personalizer_error(raised.value, 400, "InvalidModelMetadata")


def test_reset_saves_an_untrained_model_and_keeps_the_old_ones(loop):
    admin = _trained(loop).admin()
    admin.reset_model()
    versions = _versions(loop)
    assert [(v.version, v.source) for v in versions] == [(1, "learn"), (2, "reset")]
    assert versions[1].total_examples == 0
    # Decisions are served by the reset model (version 2) from now on.
    loop.personalizer().rank(rank_request(eventId="after-reset"))
    rows = {row.user_id: row for row in loop.decisions()}
    assert rows["after-reset"].model_version == 2


def test_the_log_properties_are_the_first_and_last_decision(loop):
    admin = loop.admin()
    assert admin.get_log_properties() == {"dateRange": {"from": None, "to": None}}
    loop.personalizer().rank(rank_request())
    loop.personalizer().rank(rank_request())
    first, last = (row.created_at for row in loop.decisions())
    answer = admin.get_log_properties()["dateRange"]
    assert answer["from"].startswith(first.strftime("%Y-%m-%dT%H:%M:%S"))
    assert answer["to"].startswith(last.strftime("%Y-%m-%dT%H:%M:%S"))


def test_what_hpe_does_not_do_answers_501(loop):
    """Deleting the log and feature importances: 501 with a message, nothing changed."""
    admin = loop.admin()
    loop.personalizer().rank(rank_request())
    calls = [
        admin.delete_logs,
        lambda: list(admin.list_feature_importances()),
        lambda: admin.get_feature_importance("f"),
        lambda: admin.create_feature_importance(
            "f",
            {"name": "f", "startTime": "2026-01-01T00:00:00Z", "endTime": "2026-01-02T00:00:00Z"},
        ),
        lambda: admin.delete_feature_importance("f"),
    ]
    for call in calls:
        with pytest.raises(HttpResponseError) as raised:
            call()
        assert_personalizer_error(raised.value, 501, "OperationNotAllowed")
    assert len(loop.decisions()) == 1
