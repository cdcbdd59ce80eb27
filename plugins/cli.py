"""Support for plugin commands (``hpe_register_commands``): mounting them on ``hpe`` and
giving them the app and a database session."""

from __future__ import annotations

import functools
import json
from contextlib import contextmanager

import click

from hpe_core.errors import HpeError
from plugins.app_runtime import app_runtime


def add_plugin_commands(group: click.Group, pm) -> list[str]:
    """Add every command the plugins register to ``group``; built-in names win.

    :returns: the names added
    """
    added = []
    for batch in pm.hook.hpe_register_commands():
        for command in batch or ():
            if not isinstance(command, click.Command) or not command.name:
                raise RuntimeError(f"{command!r} is not a named click command.")
            if command.name in group.commands:
                continue  # a plugin never shadows a core command
            group.add_command(command)
            added.append(command.name)
    return added


#: Builds the app for plugin commands: ``web.create_app``, registered by the ``hpe``
#: command line when it is imported (:func:`use_app_factory`), so that this module,
#: which connectors import, never imports the web package.
_app_factory = None


def use_app_factory(factory) -> None:
    """Make ``factory(config)`` the way plugin commands get the app (``web.cli`` does)."""
    global _app_factory
    _app_factory = factory


def app_or_exit(**config):
    """The app (``create_app(config)``), or a clean ``Error: ...`` exit if it cannot start
    (e.g. the schema is not migrated)."""
    create_app = _app_factory
    if create_app is None:
        raise click.ClickException("Run this command through `hpe` (it builds the app).")
    try:
        return create_app(config or None)
    except RuntimeError as exc:
        raise click.ClickException(str(exc)) from exc


@contextmanager
def app_session(**config):
    """``with app_session() as (app, session):`` the app and a session, committed at the
    end (rolled back on error; domain errors become a clean ``Error: ...``)."""
    app = app_or_exit(**config)
    with app.app_context():
        session = app_runtime(app).sessions()
        try:
            yield app, session
            session.commit()
        except HpeError as exc:
            session.rollback()
            detail = f" {json.dumps(exc.errors)}" if exc.errors else ""
            raise click.ClickException(exc.message + detail) from exc
        finally:
            session.close()


def with_app(command):
    """Decorator: call the command with ``app`` and ``session`` first (committed after)."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        with app_session() as (app, session):
            return command(app, session, *args, **kwargs)

    return wrapper
