"""Hostile email templates (issue 15, finding 4): a workspace saved
``{{ "a" * 300000000 }}`` and one delivery took the API workers from ~110 MB to 1.29 GB.
Rendering is bounded now: every template below fails fast, in little memory, and a
delivery that renders one fails for good at its first attempt."""

from __future__ import annotations

import time
import tracemalloc

import pytest
import sqlalchemy as sa
from jinja2 import TemplateError

from connectors.email import templates
from hpe_core.store.models import Delivery
from tests.connectors.conftest import (
    channel_app,
    create_config,
    decide,
    email_plugin_config,
    new_tenant,
)
from web.extensions import app_runtime

#: Memory a refused render may take, at most (the attack took over a gigabyte).
PEAK_BYTES = 24 * 1024 * 1024

HOSTILE = [
    '{{ "a" * 300000000 }}',
    '{{ 300000000 * "a" }}',
    '{{ ["a"] * 300000000 }}',
    "{{ 2 ** 10000000 }}",
    '{% set s = "a" * 400000 %}{{ s ~ s ~ s ~ s ~ s ~ s ~ s ~ s }}',
    '{% set s = "a" * 400000 %}{% set t = s + s + s + s %}{{ t|length }}',
    '{{ "a"|center(300000000) }}',
    '{{ "a".center(300000000) }}',
    '{{ "a".ljust(300000000) }}',
    '{{ "a".zfill(300000000) }}',
    '{{ "{:>300000000}".format("a") }}',
    '{{ "{:>{}}".format("a", 300000000) }}',
    '{{ "%300000000s" % "a" }}',
    '{{ "%*s" % (300000000, "a") }}',
    '{{ "%300000000s"|format("a") }}',
    '{{ "%.300000000f"|format(1.0) }}',
    '{{ ("a" * 500000)|replace("a", "bbbbbbbbbbbbbbbbbbbb") }}',
    '{{ ("a" * 500000).replace("a", "bbbbbbbbbbbbbbbbbbbb") }}',
    '{{ range(10000)|join("x" * 50000) }}',
    '{{ ("x" * 50000).join(range(10000)|map("string")) }}',
    '{{ [1]|batch(300000000, "x")|list|length }}',
    '{{ [1]|slice(300000000, "x")|list|length }}',
    '{{ ("a\n" * 200000)|indent(1000) }}',
    '{{ ("a\t" * 200000).expandtabs(1000) }}',
    '{{ "aaa".translate({97: "x" * 400000}) }}',
    "{{ range(100000000)|list|length }}",
    "{{ lipsum(1000000) }}",
    '{% for i in range(10000) %}{{ "a" * 500 }}{% endfor %}',
    '{% set x %}{% for i in range(10000) %}{{ "a" * 500 }}{% endfor %}{% endset %}{{ x|length }}',
    '{% macro m() %}{% for i in range(9999) %}{{ "a" * 500 }}{% endfor %}{% endmacro %}'
    "{{ m()|length }}",
    '{% set ns = namespace(s="a" * 300000) %}{% for i in range(20) %}'
    "{% set ns.s = ns.s ~ ns.s %}{% endfor %}{{ ns.s|length }}",
    "{% for a in range(10000) %}{% for b in range(10000) %}{% endfor %}{% endfor %}",
    '{% set s = "ab" * 250000 %}{% for a in s %}{% for b in s %}{% endfor %}{% endfor %}',
    "{% macro f(n) %}{{ f(n) }}{% endmacro %}{{ f(1) }}",
]


@pytest.mark.parametrize("source", HOSTILE)
def test_hostile_templates_fail_fast_in_little_memory(source):
    """Each is refused within the time limit, its peak allocation a few megabytes."""
    tracemalloc.start()
    started = time.monotonic()
    try:
        with pytest.raises((TemplateError, ValueError)):
            templates.render(source, {}, time_limit=0.5)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert time.monotonic() - started < 3
    assert peak < PEAK_BYTES, f"{peak / 1e6:.0f} MB"


@pytest.mark.parametrize("source", HOSTILE[:4])
def test_saving_a_hostile_template_computes_nothing(source):
    """Compiling (what saving a configuration does) folds no constant: no allocation."""
    tracemalloc.start()
    try:
        assert templates.check(source) is None
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < PEAK_BYTES


def test_ordinary_templates_still_render():
    """What marketers write keeps working: loops, filters, formats, concatenation."""
    source = (
        "Hi {{ first_name|default('there')|title }}! "
        "{% for item in items %}{{ loop.index }}. {{ item|upper }}{{ ', ' if not loop.last }}"
        "{% endfor %} {{ '%05.1f'|format(price) }} {{ '{:>6}'.format(code) }} "
        "{{ ('-' * 3) ~ ' ' ~ (items|join('/')) }} {{ 2 ** 10 }} {{ 'a'.center(5)|length }}"
        "{% set footer %}Bye{% endset %} {{ footer }}"
    )
    rendered = templates.render(
        source, {"first_name": "ada", "items": ["tea", "cake"], "price": 3.14159, "code": "X"}
    )
    assert rendered == "Hi Ada! 1. TEA, 2. CAKE 003.1      X --- tea/cake 1024 5 Bye"
    escaped = templates.render("{{ a ~ '<b>' }}", {"a": "<i>"}, html_mode=True)
    assert escaped == "&lt;i&gt;&lt;b&gt;"


def test_a_delivery_of_a_hostile_template_fails_for_good_at_once(sqlite_url, tmp_path, smtp_server):
    """The review's template: the delivery fails permanently on its first attempt (no
    retries of an expensive render) and nothing reaches the SMTP server."""
    app = channel_app(sqlite_url, tmp_path, email=email_plugin_config(smtp_server.port))
    try:
        client = app.test_client()
        tenant = new_tenant(app)
        action = {
            "id": "bomb",
            "content": {"email": {"subject": "Hi", "text": '{{ "a" * 300000000 }}'}},
        }
        config_id = create_config(client, tenant, [action])
        response = decide(client, tenant, config_id, deliver={"to": {"email": "a@example.org"}})
        assert response.status_code == 201, response.get_json()
        tracemalloc.start()
        try:
            app_runtime(app).jobs.run_pending_deliveries()
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert peak < PEAK_BYTES * 2
        session = app_runtime(app).sessions()
        try:
            [row] = session.scalars(sa.select(Delivery)).all()
        finally:
            session.close()
        assert (row.status, row.attempts) == ("failed", 1)
        assert "300,000,000" in row.error
        assert smtp_server.messages == []
    finally:
        app_runtime(app).engine.dispose()
