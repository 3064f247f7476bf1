"""Exceptions the services raise; the app maps them to 404, 403 and 422 responses."""

from __future__ import annotations


class NotFoundError(Exception):
    """The record does not exist (or is deleted): answered with 404."""


class PermissionDenied(Exception):
    """The user may not do this to this record: answered with 403."""


class ValidationError(Exception):
    """Input was rejected; errors maps each field name to a message for the person."""

    def __init__(self, errors: dict[str, str]):
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))
        self.errors = errors
