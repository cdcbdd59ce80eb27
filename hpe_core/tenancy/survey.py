"""The satisfaction survey (SC-003: "4+/5 after 30 days, measured via survey").

A signed-in person is asked "How satisfied are you with HPE?" (1-5, with an optional
comment) once they have used the dashboard for ``after_days`` days (from their first
sign-in; the app's ``SURVEY_AFTER_DAYS``, 30 by default), and then at most once every
:data:`ASK_EVERY`. Answering and dismissing both count as having been asked, whichever
workspace the person acts in; the answer belongs to the workspace they act in.

Every function takes ``now`` so that tests (and the dashboard's browser tests) control
the clock. The report reads answers only: a dismissal says nothing about satisfaction.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
from collections import Counter

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from hpe_core.errors import Conflict, InvalidInput
from hpe_core.store.models import SurveyAnswer, User, utcnow
from hpe_core.tenancy import activities
from hpe_core.tenancy.people import Person

#: A person is asked at most this often (an answer or a dismissal starts the wait).
ASK_EVERY = dt.timedelta(days=30)
SCORES = (1, 2, 3, 4, 5)
#: What each score means, as the prompt says it.
SCORE_LABELS = {
    1: "Very dissatisfied",
    2: "Dissatisfied",
    3: "Neither",
    4: "Satisfied",
    5: "Very satisfied",
}
#: SC-003's bar: a score of at least this is "satisfied".
SATISFIED = 4
MAX_COMMENT_LENGTH = 2000
_Z_95 = 1.959963984540054

ANSWERED = "survey.answered"
DISMISSED = "survey.dismissed"


# --- When to ask --------------------------------------------------------------------------


def due(
    session: Session, person: Person, *, after_days: int, now: dt.datetime | None = None
) -> bool:
    """Whether to ask ``person`` now.

    :param after_days: days of dashboard use (since the first sign-in) before the first ask
    """
    now = now or utcnow()
    user = session.get(User, person.user_id)
    if user is None or user.first_sign_in_at is None:
        return False
    if now - user.first_sign_in_at < dt.timedelta(days=after_days):
        return False
    last = last_asked(session, person)
    return last is None or now - last >= ASK_EVERY


def last_asked(session: Session, person: Person) -> dt.datetime | None:
    """When the person last answered or dismissed the survey (in any workspace)."""
    return session.scalar(
        select(func.max(SurveyAnswer.created_at)).where(SurveyAnswer.user_id == person.user_id)
    )


# --- Answering ----------------------------------------------------------------------------


def answer(
    session: Session,
    person: Person,
    score: object,
    comment: str = "",
    *,
    after_days: int,
    now: dt.datetime | None = None,
) -> SurveyAnswer:
    """Record the person's answer in the workspace they act in (commit with the caller).

    :param score: 1-5 (a form's string is accepted)
    :raises InvalidInput: no score, a score outside 1-5, or a comment that is too long
    :raises Conflict: the person was not due to be asked (answered or dismissed recently)
    """
    now = now or utcnow()
    score, comment = _checked(score, comment)
    if not due(session, person, after_days=after_days, now=now):
        raise Conflict("Thanks, your answer is already in: the survey asks again in 30 days.")
    row = _store(session, person, score, comment, now)
    _log(session, person, ANSWERED, {"score": score})
    return row


def dismiss(
    session: Session, person: Person, *, after_days: int, now: dt.datetime | None = None
) -> SurveyAnswer | None:
    """ "Not now": the person is asked again after :data:`ASK_EVERY`.

    :returns: the stored dismissal, or None when the person was not due (nothing to dismiss)
    """
    now = now or utcnow()
    if not due(session, person, after_days=after_days, now=now):
        return None
    row = _store(session, person, None, "", now)
    _log(session, person, DISMISSED, {})
    return row


def _checked(score: object, comment: str | None) -> tuple[int, str]:
    errors = {}
    try:
        score = int(str(score).strip()) if not isinstance(score, bool) else None
    except (TypeError, ValueError):
        score = None
    if score not in SCORES:
        errors["score"] = ["Choose how satisfied you are, from 1 to 5."]
    comment = (comment or "").strip()
    if len(comment) > MAX_COMMENT_LENGTH:
        errors["comment"] = [f"Keep the comment to {MAX_COMMENT_LENGTH:,} characters."]
    if errors:
        raise InvalidInput("Check the survey's answer.", errors)
    return score, comment


def _store(
    session: Session, person: Person, score: int | None, comment: str, now: dt.datetime
) -> SurveyAnswer:
    row = SurveyAnswer(
        user_id=person.user_id,
        workspace_id=person.workspace_id,
        score=score,
        comment=comment,
        created_at=now,
    )
    session.add(row)
    session.flush()
    return row


def _log(session: Session, person: Person, type: str, data: dict) -> None:
    activities.record(
        session,
        workspace_id=person.workspace_id,
        config_id=None,
        type=type,
        actor=person.actor,
        data=data,
    )


# --- The report ---------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Interval:
    """An estimate's 95% interval."""

    low: float
    high: float


@dataclasses.dataclass(frozen=True)
class MonthScores:
    """The answers given in one calendar month (UTC).

    :param month: ``YYYY-MM``
    """

    month: str
    answers: int
    mean: float
    satisfied: int

    @property
    def share_satisfied(self) -> float:
        return self.satisfied / self.answers


@dataclasses.dataclass(frozen=True)
class SurveyReport:
    """Every answer of a workspace (or of all workspaces), summarised.

    :param answers: answers with a score (dismissals are counted apart)
    :param people: how many different people answered
    :param mean: the mean score, None without answers
    :param mean_interval: its 95% interval (normal approximation; None under 2 answers)
    :param distribution: score -> how many answers gave it (every score 1-5 present)
    :param satisfied: answers of :data:`SATISFIED` or more
    :param share_satisfied: ``satisfied / answers`` (None without answers)
    :param share_interval: its 95% Wilson interval
    :param by_month: one row per month with answers, oldest first
    """

    workspace_id: str | None
    answers: int
    people: int
    dismissals: int
    mean: float | None
    mean_interval: Interval | None
    distribution: dict[int, int]
    satisfied: int
    share_satisfied: float | None
    share_interval: Interval | None
    by_month: list[MonthScores]

    @property
    def meets_target(self) -> bool | None:
        """SC-003: a mean of 4 or more (None: nobody answered yet)."""
        return None if self.mean is None else self.mean >= SATISFIED

    @property
    def verdict(self) -> str | None:
        """SC-003 with the uncertainty said: ``met`` (the mean's whole 95% interval is at
        4 or above), ``missed`` (all of it below 4), ``unclear`` (it spans 4, or a single
        answer has no interval); None without answers."""
        if self.mean is None:
            return None
        if self.mean_interval is None:
            return "unclear"
        if self.mean_interval.low >= SATISFIED:
            return "met"
        return "missed" if self.mean_interval.high < SATISFIED else "unclear"

    def as_dict(self) -> dict:
        """The report as JSON-able data (the API's and ``hpe survey report --json``'s)."""
        document = dataclasses.asdict(self)
        document["distribution"] = {str(k): v for k, v in self.distribution.items()}
        document["by_month"] = [
            {**dataclasses.asdict(row), "share_satisfied": row.share_satisfied}
            for row in self.by_month
        ]
        document["meets_target"] = self.meets_target
        document["verdict"] = self.verdict
        return document


def report(session: Session, workspace_id: str | None = None) -> SurveyReport:
    """The survey's results for one workspace, or for all of them (``None``)."""
    scope = [] if workspace_id is None else [SurveyAnswer.workspace_id == workspace_id]
    rows = session.execute(
        select(SurveyAnswer.user_id, SurveyAnswer.score, SurveyAnswer.created_at)
        .where(SurveyAnswer.score.is_not(None), *scope)
        .order_by(SurveyAnswer.created_at)
    ).all()
    dismissals = session.scalar(
        select(func.count()).select_from(SurveyAnswer).where(SurveyAnswer.score.is_(None), *scope)
    )
    scores = [row.score for row in rows]
    counts = Counter(scores)
    satisfied = sum(1 for score in scores if score >= SATISFIED)
    months: dict[str, list[int]] = {}
    for row in rows:
        months.setdefault(f"{row.created_at:%Y-%m}", []).append(row.score)
    return SurveyReport(
        workspace_id=workspace_id,
        answers=len(scores),
        people=len({row.user_id for row in rows}),
        dismissals=dismissals,
        mean=sum(scores) / len(scores) if scores else None,
        mean_interval=_mean_interval(scores),
        distribution={score: counts.get(score, 0) for score in SCORES},
        satisfied=satisfied,
        share_satisfied=satisfied / len(scores) if scores else None,
        share_interval=_wilson(satisfied, len(scores)),
        by_month=[
            MonthScores(
                month=month,
                answers=len(given),
                mean=sum(given) / len(given),
                satisfied=sum(1 for score in given if score >= SATISFIED),
            )
            for month, given in months.items()
        ],
    )


def recent_comments(
    session: Session, workspace_id: str, *, limit: int = 20
) -> list[tuple[dt.datetime, int, str]]:
    """The workspace's latest comments (when, score, comment), newest first, unnamed."""
    rows = session.execute(
        select(SurveyAnswer.created_at, SurveyAnswer.score, SurveyAnswer.comment)
        .where(
            SurveyAnswer.workspace_id == workspace_id,
            SurveyAnswer.score.is_not(None),
            SurveyAnswer.comment != "",
        )
        .order_by(SurveyAnswer.created_at.desc())
        .limit(limit)
    )
    return [(row.created_at, row.score, row.comment) for row in rows]


def _mean_interval(scores: list[int]) -> Interval | None:
    n = len(scores)
    if n < 2:
        return None
    mean = sum(scores) / n
    variance = sum((score - mean) ** 2 for score in scores) / (n - 1)
    half = _Z_95 * math.sqrt(variance / n)
    return Interval(max(SCORES[0], mean - half), min(SCORES[-1], mean + half))


def _wilson(successes: int, trials: int) -> Interval | None:
    if not trials:
        return None
    share, z2 = successes / trials, _Z_95**2
    centre = (share + z2 / (2 * trials)) / (1 + z2 / trials)
    half = (
        _Z_95 * math.sqrt(share * (1 - share) / trials + z2 / (4 * trials**2)) / (1 + z2 / trials)
    )
    return Interval(max(0.0, centre - half), min(1.0, centre + half))
