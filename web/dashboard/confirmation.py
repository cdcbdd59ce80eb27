"""The "are you sure?" step of admin changes that stop something or cannot be undone.

A form posts without ``confirmed`` and gets this page back, holding the same fields plus
``confirmed=yes``; only that second post acts. It is the GOV.UK pattern: a page of its
own, which works without JavaScript and cannot be clicked through by accident.
"""

from __future__ import annotations

from flask import render_template, request


def confirmed() -> bool:
    """True when the posted form is the confirmation page's."""
    return request.form.get("confirmed") == "yes"


def confirm_page(
    *,
    tab: str,
    heading: str,
    question: str,
    action: str,
    fields: dict,
    button: str,
    cancel: str,
    testid: str,
    consequences: tuple[str, ...] = (),
    danger: bool = True,
):
    """The confirmation page: ``button`` posts ``fields`` (and ``confirmed=yes``) to ``action``."""
    return render_template(
        "admin_confirm.html",
        admin_tab=tab,
        heading=heading,
        question=question,
        consequences=consequences,
        action=action,
        fields=fields,
        button=button,
        danger=danger,
        cancel=cancel,
        testid=testid,
    )
