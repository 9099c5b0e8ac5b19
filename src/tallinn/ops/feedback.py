"""Reading the ratings clients gave prompts (`rollout_ratings`, written by `Rollouts.rate`).

    feedback = Feedback(database)
    feedback.ratings(release=release_id, prompt="code-review", since=yesterday)
    feedback.summary(release=release_id)      # per (release, prompt): count, mean, satisfaction

Satisfaction is the share of 4 and 5 stars, as the rollout's guards count it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, case, func, select

from tallinn.ops.database import Database
from tallinn.ops.schema import rollout_ratings

RATINGS_LIMIT_MAX = 10_000


@dataclass(frozen=True, slots=True)
class Rating:
    """One stored rating: `Rating(7, "ab12...", "code-review", 4, "clear", "alice", at)`."""

    id: int
    release: str
    prompt: str
    rating: int
    comment: str | None
    client: str
    at: datetime


@dataclass(frozen=True, slots=True)
class PromptFeedback:
    """The ratings of one prompt in one release, added up."""

    release: str
    prompt: str
    ratings: int
    mean: float
    satisfaction: float  # the share of 4 and 5 stars, 0..1
    comments: int
    last_at: datetime


class Feedback:
    """Ratings in the shared `Database`, read only."""

    def __init__(self, database: Database) -> None:
        self._db = database

    def ratings(self, *, release: str | None = None, prompt: str | None = None,
                since: datetime | None = None, limit: int = 100) -> list[Rating]:
        """The newest `limit` ratings, newest first, of one release and prompt when given."""
        _check_limit(limit)
        query = _filtered(select(rollout_ratings), release, prompt, since).order_by(
            rollout_ratings.c.at.desc(), rollout_ratings.c.id.desc()).limit(limit)
        with self._db.transaction("read ratings") as connection:
            rows = connection.execute(query).all()
        return [Rating(int(row.id), row.release_id, row.prompt, int(row.rating), row.comment,
                       row.client, row.at) for row in rows]

    def summary(self, *, release: str | None = None, prompt: str | None = None,
                since: datetime | None = None) -> list[PromptFeedback]:
        """Per (release, prompt), the number of ratings, their mean, the satisfaction and the
        number of comments; the most recently rated first."""
        t = rollout_ratings
        query = _filtered(select(
            t.c.release_id, t.c.prompt, func.count().label("n"),
            func.sum(t.c.rating).label("stars"),
            func.sum(case((t.c.rating >= 4, 1), else_=0)).label("satisfied"),
            func.count(t.c.comment).label("comments"), func.max(t.c.at).label("last_at"),
        ), release, prompt, since).group_by(t.c.release_id, t.c.prompt).order_by(
            func.max(t.c.at).desc(), t.c.prompt)
        with self._db.transaction("read ratings") as connection:
            rows = connection.execute(query).all()
        return [PromptFeedback(row.release_id, row.prompt, int(row.n),
                               int(row.stars) / int(row.n), int(row.satisfied) / int(row.n),
                               int(row.comments), row.last_at) for row in rows]


def _filtered(query: Select[Any], release: str | None, prompt: str | None,
              since: datetime | None) -> Select[Any]:
    t = rollout_ratings
    if release is not None:
        query = query.where(t.c.release_id == release)
    if prompt is not None:
        query = query.where(t.c.prompt == prompt)
    if since is not None:
        query = query.where(t.c.at >= since)
    return query


def _check_limit(limit: int) -> None:
    if not 1 <= limit <= RATINGS_LIMIT_MAX:
        raise ValueError(f"limit must be between 1 and {RATINGS_LIMIT_MAX}, got {limit}")
