"""Training input and output shapes. A question as a trainee sees it (``QuestionOut``) carries no key: the key
and the explanation are only in ``QuestionKeyOut``, shown to managers and, after an attempt closes, to its
trainee (``AttemptOut.review``)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from gasdesk.fields import Id
from gasdesk.schemas import M, model_from_form
from gasdesk.training.models import QuestionKind

Title = Annotated[str, Field(min_length=1, max_length=100)]
Option = Annotated[str, Field(min_length=1, max_length=200)]
Keyword = Annotated[str, Field(min_length=1, max_length=40)]
# An answer: an option index, several, true/false, or a short text.
OptionIndex = Annotated[int, Field(ge=0, le=7)]  # a question has at most 8 options
Answer = (
    bool | OptionIndex | Annotated[list[OptionIndex], Field(max_length=8)] | Annotated[str, Field(max_length=2000)]
    | None
)

FORM_FIELD_LABELS = {
    "name": "题库名称",
    "description": "说明",
    "kind": "题型",
    "prompt": "题目",
    "options": "选项",
    "option": "正确选项",
    "correct": "正确选项",
    "value": "正确答案",
    "keywords": "关键词",
    "explanation": "解析",
    "points": "分值",
    "bank_id": "题库",
    "title": "标题",
    "question_count": "题目数量",
    "time_limit_min": "时限（分钟）",
    "pass_mark": "及格分",
    "kb_article_id": "知识库文章",
}


def from_form(model: type[M], data: dict[str, Any]) -> M:
    """``model`` from this domain's page form fields (``gasdesk.schemas.model_from_form`` with its labels)."""
    return model_from_form(model, data, FORM_FIELD_LABELS)


class BankIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: Annotated[str, Field(min_length=1, max_length=60)]
    description: Annotated[str, Field(max_length=200)] = ""


class BankOut(BaseModel):
    id: int
    name: str
    description: str


class QuestionIn(BaseModel):
    """A question and its key: ``correct`` (option indexes, from 0) for choice questions, ``value`` for
    true/false, ``keywords`` for a short answer."""

    model_config = ConfigDict(extra="forbid")
    kind: QuestionKind
    prompt: Annotated[str, Field(min_length=1, max_length=1000)]
    options: Annotated[list[Option], Field(max_length=8)] = []
    correct: Annotated[list[Annotated[int, Field(ge=0, le=7)]], Field(max_length=8)] = []
    value: bool | None = None
    keywords: Annotated[list[Keyword], Field(max_length=20)] = []
    explanation: Annotated[str, Field(max_length=1000)] = ""
    points: int = Field(default=1, ge=1, le=100)

    @model_validator(mode="after")
    def _key_fits_the_kind(self) -> QuestionIn:
        if self.kind in (QuestionKind.single, QuestionKind.multiple):
            if len(self.options) < 2:
                raise ValueError("选择题至少需要两个选项")
            if not self.correct or any(i >= len(self.options) for i in self.correct):
                raise ValueError("请选择正确选项")
            if self.kind == QuestionKind.single and len(set(self.correct)) != 1:
                raise ValueError("单选题只能有一个正确选项")
        elif self.kind == QuestionKind.true_false:
            if self.value is None:
                raise ValueError("请填写判断题的正确答案")
        elif not self.keywords:
            raise ValueError("简答题至少需要一个关键词")
        return self

    def key(self) -> dict[str, Any]:
        """The stored answer key (``Question.key``)."""
        if self.kind == QuestionKind.single:
            return {"option": self.correct[0]}
        if self.kind == QuestionKind.multiple:
            return {"options": sorted(set(self.correct))}
        if self.kind == QuestionKind.true_false:
            return {"value": self.value}
        return {"keywords": list(dict.fromkeys(k.strip() for k in self.keywords if k.strip()))}

    def stored_options(self) -> list[str]:
        return list(self.options) if self.kind in (QuestionKind.single, QuestionKind.multiple) else []


class ExamIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    bank_id: Id
    title: Title
    question_count: int = Field(ge=1, le=200)
    time_limit_min: int = Field(ge=1, le=600)
    pass_mark: float = Field(ge=0, le=100)


class MaterialFromKbIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    kb_article_id: Id
    title: Annotated[str, Field(max_length=200)] = ""  # blank: the article's title


class AnswersIn(BaseModel):
    """Answers by question id (as a string key, as JSON objects have them)."""

    model_config = ConfigDict(extra="forbid")
    answers: Annotated[dict[str, Answer], Field(max_length=200)] = {}


class SparringStartIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    scenario_id: Id


class SayIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    text: Annotated[str, Field(min_length=1, max_length=500)]


# ---------------------------------------------------------------- out


class MaterialOut(BaseModel):
    id: int
    title: str
    source: str
    body: str
    kb_article_id: int | None
    file_url: str | None
    created_at: datetime


class QuestionOut(BaseModel):
    id: int
    kind: str
    prompt: str
    options: list[str]
    points: int


class QuestionKeyOut(QuestionOut):
    key: dict[str, Any]
    explanation: str


class ReviewOut(BaseModel):
    question: QuestionKeyOut
    answer: Any
    earned: float  # share of the points, 0–1


class ExamOut(BaseModel):
    id: int
    bank_id: int
    title: str
    question_count: int
    time_limit_min: int
    pass_mark: float


class AttemptOut(BaseModel):
    id: int
    exam_id: int
    user_id: int
    status: str
    started_at: datetime
    deadline_at: datetime
    finished_at: datetime | None
    seconds_left: int
    score: float | None
    passed: bool | None
    answers: dict[str, Any]
    questions: list[QuestionOut]  # no keys
    review: list[ReviewOut] | None  # keys and what each answer earned: only once the attempt is closed


class ResultRow(BaseModel):
    attempt_id: int
    user_id: int
    name: str
    status: str
    started_at: datetime
    finished_at: datetime | None
    score: float | None
    passed: bool | None


class ScenarioOut(BaseModel):
    id: int
    code: str
    title: str
    brief: str


class SparringTurnOut(BaseModel):
    seq: int
    sender: str
    text: str
    steps: list[str]
    at: datetime


class SparringOut(BaseModel):
    id: int
    scenario_id: int
    user_id: int
    status: str
    steps_done: list[str]
    turns: list[SparringTurnOut]
    step_score: float | None
    quality_score: float | None
    score: float | None
    feedback: dict[str, Any]
