"""Stored recommendations: the lifecycle (open → resolved → reopened; applied and
dismissed rows), apply (settings changed, both activities logged, 409/404) and dismiss,
on both databases."""

from __future__ import annotations

import datetime as dt

import pytest

from hpe_core.errors import Conflict, InvalidInput, NotFound
from hpe_core.recommend import recommendations
from hpe_core.recommend.proposals import Proposal
from hpe_core.recommend.rules import SPECS
from hpe_core.store.models import Activity, Recommendation
from hpe_core.tenancy import activities, configs
from hpe_core.tenancy.settings import validate_settings
from hpe_core.tenancy.workspaces import Principal
from tests.conftest import create_tenant

NOW = dt.datetime(2026, 3, 1, 12, tzinfo=dt.UTC)


def _settings(**blocks) -> dict:
    raw = {"actions": [{"id": a} for a in ("a", "b", "c", "d")]} | blocks
    return validate_settings(raw)


# --- stored lifecycle (both databases) ----------------------------------------------------


@pytest.fixture
def owner(app, session):
    """A workspace, its principal and a configuration with four actions."""
    tenant = create_tenant(app)
    principal = Principal(tenant.id, "hpe_sk_test")
    config = configs.create(
        session, principal, configs.Catalog(), name="Spring", settings=_settings()
    )
    session.commit()
    return principal, config


def _proposal(kind="retire_action", subject="a", patch=None, **evidence) -> Proposal:
    return Proposal(
        spec=SPECS[kind],
        subject=subject,
        severity="warning",
        title="t",
        detail="d",
        evidence=evidence or {"p_value": 0.001},
        patch=patch,
    )


def _row(session, config, kind="retire_action", subject="a") -> Recommendation:
    session.expire_all()
    return (
        session.query(Recommendation)
        .filter_by(config_id=config.id, kind=kind, subject=subject)
        .one()
    )


def test_lifecycle_open_resolved_reopened(session, owner):
    """Raised → open; raised again → refreshed, not duplicated; cleared → resolved; back → open."""
    _, config = owner
    first = recommendations.refresh(session, config, [_proposal(p_value=0.001)], now=NOW)
    session.commit()
    row = _row(session, config)
    assert row.status == "open" and row.evidence == {"p_value": 0.001} and first[0].id == row.id

    recommendations.refresh(session, config, [_proposal(p_value=0.0005)], now=NOW)
    session.commit()
    row = _row(session, config)
    assert row.status == "open" and row.evidence == {"p_value": 0.0005}
    assert session.query(Recommendation).count() == 1

    recommendations.refresh(session, config, [], now=NOW)
    session.commit()
    assert _row(session, config).status == "resolved"

    recommendations.refresh(session, config, [_proposal()], now=NOW + dt.timedelta(hours=1))
    session.commit()
    assert _row(session, config).status == "open"


def test_refresh_without_changes_writes_nothing(session, owner):
    """The second identical pass leaves the row as it was (updated_at included)."""
    _, config = owner
    recommendations.refresh(session, config, [_proposal()], now=NOW)
    session.commit()
    before = _row(session, config).updated_at
    recommendations.refresh(session, config, [_proposal()], now=NOW + dt.timedelta(minutes=5))
    session.commit()
    assert _row(session, config).updated_at == before


def test_applied_stays_applied_until_raised_with_a_change_after_a_week(session, owner):
    """An applied row survives its condition clearing and being raised again at once; a
    week after applying, a patch that would still change the settings reopens it."""
    principal, config = owner
    patch = {"exploration": {"gamma_scale": 5.0}}
    recommendations.refresh(
        session, config, [_proposal("change_exploration", "exploration", patch)], now=NOW
    )
    session.commit()
    row = _row(session, config, "change_exploration", "exploration")
    recommendations.apply(session, principal, configs.Catalog(), config.id, row.id, now=NOW)
    session.commit()
    assert config.settings["exploration"]["gamma_scale"] == 5.0

    wider = {"exploration": {"gamma_scale": 2.5}}
    proposal = _proposal("change_exploration", "exploration", wider)
    recommendations.refresh(session, config, [], now=NOW + dt.timedelta(days=1))
    recommendations.refresh(session, config, [proposal], now=NOW + dt.timedelta(days=6))
    session.commit()
    row = _row(session, config, "change_exploration", "exploration")
    assert row.status == "applied" and row.patch == patch
    # The same (already applied) patch never reopens it.
    same = _proposal("change_exploration", "exploration", patch)
    recommendations.refresh(session, config, [same], now=NOW + dt.timedelta(days=30))
    session.commit()
    assert _row(session, config, "change_exploration", "exploration").status == "applied"

    recommendations.refresh(session, config, [proposal], now=NOW + dt.timedelta(days=7))
    session.commit()
    row = _row(session, config, "change_exploration", "exploration")
    assert row.status == "open" and row.patch == wider and row.applied_at is None


def test_dismissed_stays_dismissed_unless_the_patch_changes(session, owner):
    principal, config = owner
    proposal = _proposal("holdout_underpowered", "holdout", {"holdout": {"percent": 20.0}})
    recommendations.refresh(session, config, [proposal], now=NOW)
    session.commit()
    row = _row(session, config, "holdout_underpowered", "holdout")
    dismissed_at = NOW + dt.timedelta(hours=1)
    recommendations.dismiss(session, principal, config.id, row.id, now=dismissed_at)
    session.commit()
    assert _row(session, config, "holdout_underpowered", "holdout").updated_at == dismissed_at
    later = NOW + dt.timedelta(days=30)
    recommendations.refresh(session, config, [proposal], now=later)
    recommendations.refresh(session, config, [], now=later)  # cleared: still dismissed
    session.commit()
    assert _row(session, config, "holdout_underpowered", "holdout").status == "dismissed"
    other = _proposal("holdout_underpowered", "holdout", {"holdout": {"percent": 30.0}})
    recommendations.refresh(session, config, [other], now=dismissed_at + dt.timedelta(days=6))
    session.commit()
    assert _row(session, config, "holdout_underpowered", "holdout").status == "dismissed"
    recommendations.refresh(session, config, [other], now=later)
    session.commit()
    assert _row(session, config, "holdout_underpowered", "holdout").status == "open"
    [dismissed] = session.query(Activity).filter_by(type="recommendation.dismissed").all()
    assert dismissed.data["kind"] == "holdout_underpowered"


def test_apply_changes_settings_and_logs_both_activities(session, owner):
    principal, config = owner
    patch = {"actions": [a for a in config.settings["actions"] if a["id"] != "a"]}
    recommendations.refresh(session, config, [_proposal(patch=patch, p_value=0.001)], now=NOW)
    session.commit()
    row = _row(session, config)
    applied, updated = recommendations.apply(
        session, principal, configs.Catalog(), config.id, row.id, now=NOW
    )
    session.commit()
    assert [a["id"] for a in updated.settings["actions"]] == ["b", "c", "d"]
    assert applied.status == "applied" and applied.applied_by == "hpe_sk_test"
    assert applied.applied_at == NOW
    types = [a.type for a in session.scalars(activities.query(session, config.id))]
    assert types.count("recommendation.applied") == 1 and types.count("config.updated") == 1
    [logged] = session.query(Activity).filter_by(type="recommendation.applied").all()
    assert logged.data["kind"] == "retire_action" and logged.data["patch"] == patch
    assert logged.data["evidence"] == {"p_value": 0.001}
    with pytest.raises(Conflict):
        recommendations.apply(session, principal, configs.Catalog(), config.id, row.id)


def test_two_list_patches_applied_in_turn_keep_both_changes(session, owner):
    """Retiring a, then b, leaves c and d (the second patch is rebuilt on the first)."""
    principal, config = owner
    proposals = [
        _proposal(
            subject=s, patch={"actions": [a for a in config.settings["actions"] if a["id"] != s]}
        )
        for s in ("a", "b")
    ]
    rows = recommendations.refresh(session, config, proposals, now=NOW)
    session.commit()
    for row in rows:
        recommendations.apply(session, principal, configs.Catalog(), config.id, row.id)
    session.commit()
    assert [a["id"] for a in config.settings["actions"]] == ["c", "d"]
    # A third would leave one action: refused, nothing written.
    [third] = recommendations.refresh(
        session, config, [_proposal(subject="c", patch={"actions": [{"id": "d"}]})], now=NOW
    )
    session.commit()
    with pytest.raises(Conflict, match="fewer than 2"):
        recommendations.apply(session, principal, configs.Catalog(), config.id, third.id)
    session.rollback()
    assert [a["id"] for a in config.settings["actions"]] == ["c", "d"]


def test_apply_refuses_alarms_other_workspaces_and_stale_patches(app, session, owner):
    principal, config = owner
    rows = recommendations.refresh(
        session,
        config,
        [
            _proposal("srm_alarm", "", None),
            _proposal(
                "holdout_underpowered", "holdout", {"holdout": {"baseline": {"action_id": "zz"}}}
            ),
        ],
        now=NOW,
    )
    session.commit()
    alarm, stale = rows
    with pytest.raises(Conflict, match="investigate"):
        recommendations.apply(session, principal, configs.Catalog(), config.id, alarm.id)
    before = dict(config.settings)
    with pytest.raises(Conflict, match="no longer applies"):
        recommendations.apply(session, principal, configs.Catalog(), config.id, stale.id)
    session.rollback()
    session.expire_all()
    assert _row(session, config, "holdout_underpowered", "holdout").status == "open"
    assert configs.get(session, principal, config.id).settings == before
    stranger = Principal(create_tenant(app).id, "hpe_sk_other")
    with pytest.raises(NotFound):
        recommendations.apply(session, stranger, configs.Catalog(), config.id, alarm.id)
    with pytest.raises(NotFound):
        recommendations.list_for(session, stranger, config.id)
    with pytest.raises(InvalidInput):
        recommendations.list_for(session, principal, config.id, status="closed")
