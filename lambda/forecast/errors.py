"""Every client mistake is an ApiError with a status and a stable code; the handler maps it in one place."""

from __future__ import annotations

QUOTE_LIMIT = 40  # characters of a client's own input that an error message may echo back


def clean(text: str) -> str:
    """Text that serializes anywhere: lone surrogates (invalid UTF-16 that JSON decoders let through) become '?'."""
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        return text.encode("utf-8", "replace").decode("utf-8")


def quote(value, limit: int = QUOTE_LIMIT) -> str:
    """repr() of a client's value for an error message: capped, so an error never reflects megabytes back."""
    text = (
        repr(value) if not isinstance(value, str) or len(value) <= limit else repr(value[:limit]) + f"... ({len(value):,} chars)"
    )
    return clean(text if len(text) <= limit + 40 else text[: limit + 40] + "...")


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = clean(message)

    def body(self) -> dict:
        return {"error": self.message, "code": self.code}


def bad_request(code: str, message: str) -> ApiError:
    return ApiError(400, code, message)
