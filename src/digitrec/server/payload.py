"""Getting a picture (and fields) out of a request: multipart, JSON with a data URL, or a
raw image body. The bytes are received on the event loop (read_request); anything that
costs CPU in proportion to them (JSON, base64) waits for `Sent.open`, which runs where the
picture is read, in a reading process or thread (work.py). Decoding is the library's."""

from __future__ import annotations

import base64
import binascii
import struct
from dataclasses import dataclass

from pydantic import BaseModel, ValidationError
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException
from starlette.requests import Request

FORMATS = {"image/png": "PNG", "image/jpeg": "JPEG", "image/webp": "WebP", "image/bmp": "BMP"}
ALIASES = {"image/jpg": "image/jpeg", "image/pjpeg": "image/jpeg", "image/x-ms-bmp": "image/bmp"}
ANY_TYPE = ("", "application/octet-stream")  # no claim about the content: look at the bytes
FILE_FIELDS = ("file", "image")
USE = "use PNG, JPEG, WebP or BMP"


class ApiError(HTTPException):
    """An error answer: its status and a JSON body {"error": {"code", "message"}}."""

    def __init__(self, status: int, code: str, message: str, headers: dict | None = None):
        super().__init__(status_code=status, detail=message, headers=headers)
        self.code = code
        self.message = message


class BodyTooLarge(ApiError):
    def __init__(self, limit: int):
        super().__init__(
            413, "body_too_large", f"the request body is over the limit of {limit:,} bytes"
        )


def sniff(data: bytes) -> str | None:
    """The picture format the bytes begin with, as a media type, or None."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    if data.startswith(b"BM"):
        return "image/bmp"
    return None


def png_pixels(data: bytes) -> int | None:
    """Width times height from a PNG's header (IHDR, always the first chunk), or None for
    what is not a PNG: a few bytes read, nothing decoded."""
    if len(data) < 24 or not data.startswith(b"\x89PNG\r\n\x1a\n") or data[12:16] != b"IHDR":
        return None
    width, height = struct.unpack(">II", data[16:24])
    return width * height


def media_type(value: str | None) -> str:
    media = (value or "").split(";", 1)[0].strip().lower()
    return ALIASES.get(media, media)


def check_picture(data: bytes, declared: str | None) -> bytes:
    """Refuse what is not a picture of ours by type (415) before anything decodes it."""
    declared = media_type(declared)
    if declared not in ANY_TYPE and declared not in FORMATS:
        kind = "a picture type we do not read" if declared.startswith("image/") else "not a picture"
        raise ApiError(415, "unsupported_media_type", f"{declared} is {kind}; {USE}")
    if not data:
        raise ApiError(422, "bad_image", "the picture is empty (0 bytes)")
    if sniff(data) is None:
        if declared in FORMATS:  # it says it is a picture but is not one we can decode
            raise ApiError(422, "bad_image", f"the data is not a readable {FORMATS[declared]}")
        raise ApiError(415, "unsupported_media_type", f"the data is not a picture; {USE}")
    return data


def from_data_url(text: str) -> tuple[bytes, str | None]:
    """Bytes and declared type of a data URL ("data:image/png;base64,...") or bare base64."""
    declared = None
    if text.startswith("data:"):
        header, sep, text = text.partition(",")
        if not sep:
            raise ApiError(422, "invalid_field", "image: a data URL needs a comma before its data")
        parts = header[5:].split(";")
        if "base64" not in parts[1:]:
            raise ApiError(422, "invalid_field", "image: the data URL must be base64-encoded")
        declared = parts[0] or None
    try:
        return base64.b64decode(text, validate=True), declared
    except (binascii.Error, ValueError):
        try:  # line-wrapped base64 is still base64
            return base64.b64decode("".join(text.split()), validate=True), declared
        except (binascii.Error, ValueError):
            raise ApiError(422, "invalid_field", "image: not valid base64")


def validation_error(e: ValidationError) -> ApiError:
    first = e.errors()[0]
    if first["type"] == "json_invalid":
        return ApiError(400, "malformed_body", f"the body is not valid JSON: {first['msg']}")
    if first["type"] in ("model_type", "model_attributes_type"):
        return ApiError(400, "malformed_body", "the JSON body must be an object")
    where = ".".join(str(p) for p in first["loc"]) or "body"
    return ApiError(422, "invalid_field", f"{where}: {first['msg']}")


def parse_json(body: bytes, model: type[BaseModel]) -> BaseModel:
    if not body:
        raise ApiError(400, "malformed_body", "the request has no body")
    try:
        return model.model_validate_json(body)
    except ValidationError as e:
        raise validation_error(e)


@dataclass
class Sent:
    """What a request sent, received but not yet parsed: a JSON body (`json_model` with a
    data URL in `image`), or a picture's bytes (checked by type already) and a form's text
    fields."""

    body: bytes
    json_model: type[BaseModel] | None = None
    fields: dict[str, str] | None = None

    def open(self) -> tuple[bytes, dict[str, str] | BaseModel]:
        """The picture's bytes and the other fields: the JSON model, or the form's fields
        as a dict. CPU in proportion to the body: never call it on the event loop."""
        if self.json_model is None:
            return self.body, self.fields or {}
        payload = parse_json(self.body, self.json_model)
        data, declared = from_data_url(payload.image)
        return check_picture(data, declared), payload


async def read_request(request: Request, json_model: type[BaseModel]) -> Sent:
    """Receive the picture (multipart, JSON or the body itself); refuse what is plainly not
    one by its type, before it waits for its turn to be read."""
    content_type = media_type(request.headers.get("content-type"))
    if content_type == "multipart/form-data":
        form = await request.form(max_files=1, max_fields=16)
        try:
            upload = next((form[k] for k in FILE_FIELDS if k in form), None)
            if not isinstance(upload, UploadFile):
                raise ApiError(
                    422, "invalid_field", "file: send the picture as a file field named 'file'"
                )
            data = await upload.read()
            fields = {k: v for k, v in form.items() if isinstance(v, str)}
            return Sent(check_picture(data, upload.content_type), fields=fields)
        finally:
            await form.close()
    if content_type == "application/json" or content_type.endswith("+json"):
        body = await request.body()
        if not body:
            raise ApiError(400, "malformed_body", "the request has no body")
        return Sent(body, json_model=json_model)
    if content_type in FORMATS or content_type in ANY_TYPE:
        data = await request.body()
        if not data and content_type == "":
            raise ApiError(400, "malformed_body", "the request has no body")
        return Sent(check_picture(data, content_type))
    raise ApiError(
        415,
        "unsupported_media_type",
        f"{content_type} is not accepted: send multipart/form-data with a 'file', "
        'JSON {"image": "data:image/png;base64,..."}, or the picture itself',
    )


def form_fields(fields: dict[str, str], model: type[BaseModel]) -> BaseModel:
    try:
        return model.model_validate({k: v for k, v in fields.items() if v != ""})
    except ValidationError as e:
        raise validation_error(e)
