"""The wire schema of a reading: the one definition of the JSON that Prediction.to_dict and
NumberReading.to_dict write, which `digitrec predict --json` prints and the API answers with
(the API's response models are built from these classes in digitrec.server.schemas; each
field's note becomes its description in /docs). Plain typing: the reading wing needs
neither pydantic nor FastAPI for it."""

from __future__ import annotations

from typing import Annotated, TypedDict


class TopEntry(TypedDict):
    digit: int
    probability: float


class DigitDict(TypedDict):
    """One digit read from a picture, or refused (Prediction.to_dict)."""

    digit: Annotated[
        int | None, "the most likely digit; a best guess when refused, null when blank"
    ]
    confidence: Annotated[float, "calibrated probability of `digit`"]
    refused: Annotated[bool, "true when the model will not say (see `reason`)"]
    reason: Annotated[str | None, "why it was refused (null when it was not)"]
    message: Annotated[str, "the digit, or why it was refused, in words"]
    top3: Annotated[list[TopEntry], "the three likeliest digits, the likeliest first"]
    probabilities: Annotated[list[float], "ten calibrated probabilities, 0 to 9"]


class BoxedDigitDict(DigitDict):
    """One digit of a number (Prediction.to_dict of a digit that read_number found)."""

    box: Annotated[list[int], "left, top, right, bottom in the picture's pixels"]


class NumberDict(TypedDict):
    """Every digit read from a picture (NumberReading.to_dict)."""

    number: Annotated[str, "the digits as written; '?' for a refused one"]
    refused: Annotated[bool, "true when blank or when any digit was refused"]
    reason: Annotated[
        str | None,
        "why no digit was found (blank; not_a_digit: marks only; busy: too busy to be a "
        "number), else null",
    ]
    lines: Annotated[int, "lines of digits found, top to bottom"]
    digits: Annotated[list[BoxedDigitDict], "each digit, lines top to bottom, left to right"]
    written: Annotated[
        str, "the digits with the marks written between them (',', '.', '-', '='): 1,526 for 1526"
    ]
