"""What the knowledge-base API accepts."""

from __future__ import annotations

from pydantic import BaseModel, Field

from gasdesk.fields import MAX_DB_INT, BoundedDate
from gasdesk.kb import service
from gasdesk.schemas import IsoDatetime, Out


class ArticleIn(BaseModel):
    title: str = Field(max_length=200)
    questions: list[str] = Field(default_factory=list, max_length=30)
    answer: str = Field(max_length=20000)
    category: str = Field(default="常见问题", max_length=40)
    tags: list[str] = Field(default_factory=list, max_length=20)
    channels: list[str] = Field(default_factory=list, max_length=5)
    valid_from: BoundedDate | None = None
    valid_to: BoundedDate | None = None
    status: str | None = None

    def checked(self) -> service.ArticleInput:
        return service.check_article(**self.model_dump(exclude={"status"}))


class FeedbackIn(BaseModel):
    helpful: bool


class RestoreIn(BaseModel):
    version: int = Field(ge=1, le=MAX_DB_INT)


# ---------------------------------------------------------------- responses


class SearchResult(Out):
    id: int
    title: str
    category: str
    score: float
    snippet: str
    answer: str


class SearchOut(Out):
    q: str
    results: list[SearchResult]


class FeedbackOut(Out):
    ok: bool
    counted: bool  # False: a repeated vote, accepted but not counted


class ArticleOut(Out):
    """An article as ``service.article_dict`` gives it."""

    id: int
    title: str
    questions: list[str]
    answer: str
    category: str
    tags: list[str]
    channels: list[str]
    valid_from: str | None  # ISO date
    valid_to: str | None
    status: str
    version: int
    hits: int
    helpful: int
    not_helpful: int
    published_at: IsoDatetime | None
    updated_at: IsoDatetime


class ArticleUpdated(ArticleOut):
    changed: bool


class ArticleVersionOut(Out):
    version: int
    title: str
    status: str
    note: str
    editor: str
    at: IsoDatetime
    questions: list[str]
    answer: str


class MissedQuery(Out):
    query: str  # one (redacted) wording of the group
    key: str  # identifies the group
    count: int
    example: str


class ArticleHits(Out):
    id: int
    title: str
    hits: int


class ArticleVotes(Out):
    id: int
    title: str
    not_helpful: int
    helpful: int


class KbStatsOut(Out):
    articles: dict[str, int]
    hits: int
    misses: int
    top_misses: list[MissedQuery]
    top_articles: list[ArticleHits]
    not_helpful: list[ArticleVotes]


class RejectedRow(Out):
    row: int
    title: str
    reason: str


class ImportReport(Out):
    created: int
    updated: int
    unchanged: int
    rejected: list[RejectedRow]
