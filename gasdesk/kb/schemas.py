"""What the knowledge-base API accepts."""

from __future__ import annotations

from pydantic import BaseModel, Field

from gasdesk.fields import MAX_DB_INT, BoundedDate
from gasdesk.kb import service


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
