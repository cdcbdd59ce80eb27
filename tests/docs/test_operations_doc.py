"""docs/operations.md documents every setting, as datasette's test_docs does for its own:
each UPPERCASE name of :class:`hpe_core.runtime.Defaults` and :class:`web.config.DefaultConfig`
is defined there as ``HPE_<NAME>``, in the first cell of a table row or in a heading, and
nothing is defined there that is not a setting."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from hpe_core.runtime import ENV_PREFIX, Defaults
from web.config import DefaultConfig

OPERATIONS = Path(__file__).resolve().parents[2] / "docs" / "operations.md"
SETTINGS = sorted(
    {name for cls in (Defaults, DefaultConfig) for name in dir(cls) if name.isupper()}
)
#: Read from the environment only (it says where instance/config.py is), not a setting.
ENVIRONMENT_ONLY = {"HPE_INSTANCE_PATH"}

_ROW = re.compile(r"^\|\s*`(HPE_[A-Z0-9_]+)`\s*\|", re.M)
_HEADING = re.compile(r"^#+ .*`(HPE_[A-Z0-9_]+)`", re.M)


def defined_variables(markdown: str) -> set[str]:
    """The ``HPE_*`` names that start a table row or appear in a heading."""
    return set(_ROW.findall(markdown)) | set(_HEADING.findall(markdown))


@pytest.fixture(scope="module")
def defined() -> set[str]:
    return defined_variables(OPERATIONS.read_text())


def test_the_settings_are_found():
    """Both classes are read: the operational settings and the web app's own."""
    assert {"DATABASE_URL", "INLINE_SWEEPER", "MAX_CONTENT_LENGTH", "API_TITLE"} <= set(SETTINGS)


def test_rows_and_headings_define_variables():
    """A name defines a variable in a row's first cell or a heading, not in running text."""
    markdown = (
        "| `HPE_A` | `1` | x |\n|---|---|---|\n| `--host` | | see `HPE_B` |\n"
        "### `HPE_C`\nSet `HPE_D` to ...\n"
    )
    assert defined_variables(markdown) == {"HPE_A", "HPE_C"}


@pytest.mark.parametrize("name", SETTINGS)
def test_setting_is_documented(name, defined):
    """docs/operations.md defines HPE_<NAME> for every setting."""
    assert ENV_PREFIX + name in defined, f"document HPE_{name} in docs/operations.md"


def test_no_documented_variable_is_unknown(defined):
    """Every variable docs/operations.md defines is a setting (none stale or misspelled)."""
    known = {ENV_PREFIX + name for name in SETTINGS} | ENVIRONMENT_ONLY
    assert defined - known == set()
