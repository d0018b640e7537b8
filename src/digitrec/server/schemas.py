"""Pydantic models for every request and response of the API (they also make /docs).

A reading's fields are not written here: the models of readings are built from the wire
schema (digitrec.reading.wire), and the reasons a reading may be refused for come from
digitrec.reading.predictor.REASONS."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal, get_args, get_origin, get_type_hints

from pydantic import BaseModel, BeforeValidator, Field, create_model

from ..reading import wire
from ..reading.predictor import REASONS

Reason = Literal[tuple(REASONS)]  # an enum in /docs, from the one list


def wire_model(
    name: str, shape: type, base: type[BaseModel] = BaseModel, **types: Any
) -> type[BaseModel]:
    """A model with the fields of the wire TypedDict `shape` that `base` lacks, in its order,
    each note its description; `types` puts a (type, default) in place of a field's own
    (a nested TypedDict must be given as a model: pydantic takes only typing_extensions's)."""
    fields = {}
    for key, hint in get_type_hints(shape, include_extras=True).items():
        if key in base.model_fields:
            continue
        kind, *notes = get_args(hint) if get_origin(hint) is Annotated else (hint,)
        kind, default = types.get(key, (kind, ...))
        fields[key] = (kind, Field(default, description=" ".join(notes) or None))
    return create_model(name, __base__=base, __module__=__name__, **fields)


# A 7 drawn in 28x28 pixels, black on white (132 bytes): the example /docs offers, and
# schema-driven testers send, is a real picture that reads as 7.
EXAMPLE_IMAGE = (
    "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAABwAAAAcCAAAAABXZoBIAAAAS0lEQVR42sXSQQoAIAgE"
    "QDf6/5ftEqVW0l7Ki6COIAiVcxR536w9w5c1k8ia6tbqwvYSY5Q8ZUJSGshJCynpICM9JGSA9zJCwYe/bVcbDTk2"
    "PeiEAAAAAElFTkSuQmCC"
)


class ImageRequest(BaseModel):
    """A picture sent as JSON: a data URL (what a canvas's toDataURL gives) or bare base64."""

    image: str = Field(
        min_length=1,
        description="data:image/png;base64,... (PNG, JPEG, WebP or BMP), or plain base64",
        examples=[EXAMPLE_IMAGE],
    )


# Strict: JSON's true, "7" and 7.0 are not the digit 7. A sample stored under a label the
# client did not mean is worse than a refused one.
LABEL = Field(
    strict=True, ge=0, le=9, description="the digit the picture really shows", examples=[7]
)
PREDICTED = Field(
    default=None, strict=True, ge=0, le=9, description="what the model said it was, if anything"
)


class FeedbackRequest(ImageRequest):
    label: int = LABEL
    predicted: int | None = PREDICTED


def one_digit(value: object) -> object:
    """A form's field is text: exactly one of 0-9 (no sign, space, point or second digit)."""
    if isinstance(value, str) and re.fullmatch(r"[0-9]", value):
        return int(value)
    raise ValueError("must be one digit, 0 to 9")


class FeedbackFields(BaseModel):
    """The non-file fields of a multipart feedback request."""

    label: Annotated[int, BeforeValidator(one_digit)] = LABEL
    predicted: Annotated[int | None, BeforeValidator(one_digit)] = PREDICTED


class ModelInfo(BaseModel):
    name: str
    version: str | None = Field(description="the digitrec version the model was trained with")
    date: str | None = Field(default=None, description="when it was trained")


TopEntry = wire_model("TopEntry", wire.TopEntry)
DigitWire = wire_model(
    "DigitWire", wire.DigitDict, reason=(Reason | None, None), top3=(list[TopEntry], ...)
)


class DigitReading(DigitWire):
    input: str | None = Field(
        description="the 28x28 picture the model saw, as a PNG data URL (null when blank)"
    )


class PredictResponse(DigitReading):
    model: ModelInfo
    elapsed_ms: float = Field(description="time the server took, from request to answer")


NumberDigit = wire_model("NumberDigit", wire.BoxedDigitDict, base=DigitReading)
NumberWire = wire_model(
    "NumberWire", wire.NumberDict, reason=(Reason | None, None), digits=(list[NumberDigit], ...)
)


class ReadNumberResponse(NumberWire):
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
    tie_margin: float = Field(
        description="answers whose likeliest digit leads the next by less than this are "
        "refused as unsure (0: none)"
    )
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
