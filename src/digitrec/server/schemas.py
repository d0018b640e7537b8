"""Pydantic models for every request and response of the API (they also make /docs)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

Reason = Literal["blank", "not_a_digit", "unsure"]
Probabilities = list[float]


class ImageRequest(BaseModel):
    """A picture sent as JSON: a data URL (what a canvas's toDataURL gives) or bare base64."""

    image: str = Field(
        description="data:image/png;base64,... (PNG, JPEG, WebP or BMP), or plain base64",
        examples=["data:image/png;base64,iVBORw0KGgo..."],
    )


class FeedbackRequest(ImageRequest):
    label: int = Field(ge=0, le=9, description="the digit the picture really shows")
    predicted: int | None = Field(
        default=None, ge=0, le=9, description="what the model said it was, if anything"
    )


class FeedbackFields(BaseModel):
    """The non-file fields of a multipart feedback request."""

    label: int = Field(ge=0, le=9)
    predicted: int | None = Field(default=None, ge=0, le=9)


class ModelInfo(BaseModel):
    name: str
    version: str | None = Field(description="the digitrec version the model was trained with")
    date: str | None = Field(default=None, description="when it was trained")


class TopEntry(BaseModel):
    digit: int
    probability: float


class DigitReading(BaseModel):
    digit: int | None = Field(
        description="the most likely digit; a best guess when refused, null when blank"
    )
    confidence: float = Field(description="calibrated probability of `digit`")
    refused: bool = Field(description="true when the model will not say (see `reason`)")
    reason: Reason | None = None
    message: str = Field(description="the digit, or why it was refused, in words")
    top3: list[TopEntry]
    probabilities: Probabilities = Field(description="ten calibrated probabilities, 0 to 9")
    input: str | None = Field(
        description="the 28x28 picture the model saw, as a PNG data URL (null when blank)"
    )


class PredictResponse(DigitReading):
    model: ModelInfo
    elapsed_ms: float = Field(description="time the server took, from request to answer")


class NumberDigit(DigitReading):
    box: list[int] = Field(description="left, top, right, bottom in the picture's pixels")


class ReadNumberResponse(BaseModel):
    number: str = Field(description="the digits as written; '?' for a refused one")
    refused: bool = Field(description="true when blank or when any digit was refused")
    reason: Reason | None = None
    lines: int = Field(description="lines of digits found, top to bottom")
    digits: list[NumberDigit] = Field(description="each digit, lines top to bottom, left to right")
    model: ModelInfo
    elapsed_ms: float


class FeedbackResponse(BaseModel):
    id: int = Field(description="the stored sample's id")
    label: int
    predicted: int | None


class Health(BaseModel):
    status: Literal["ok"]


class Ready(BaseModel):
    status: Literal["ready"]
    model: ModelInfo


class Limits(BaseModel):
    max_body_bytes: int
    max_pixels: int
    formats: list[str]


class Info(BaseModel):
    version: str
    model: ModelInfo
    threshold: float = Field(description="answers less confident than this are refused")
    limits: Limits


class ModelChange(BaseModel):
    model: str = Field(
        min_length=1,
        description="the name of a model in the server's models folder, 'bundled', "
        "or the path of a model file on the server",
        examples=["bundled"],
    )


class ModelChanged(BaseModel):
    model: ModelInfo = Field(description="the model every worker now reads with")
    previous: ModelInfo = Field(description="the model this worker read with until now")
    path: str = Field(description="the model's file on the server")


class ErrorDetail(BaseModel):
    code: str = Field(
        description="machine-readable: bad_image, blank_image, unsupported_media_type, "
        "body_too_large, malformed_body, invalid_field, not_found, ..."
    )
    message: str


class ErrorBody(BaseModel):
    error: ErrorDetail
