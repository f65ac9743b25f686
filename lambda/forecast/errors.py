"""Every client mistake is an ApiError with a status and a stable code; the handler maps it in one place."""
from __future__ import annotations


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message

    def body(self) -> dict:
        return {"error": self.message, "code": self.code}


def bad_request(code: str, message: str) -> ApiError:
    return ApiError(400, code, message)
