"""Domain errors: each carries a message id the handler translates for the user."""

from __future__ import annotations

from typing import Any


class DomainError(Exception):
    """A rule said no. ``key`` is a message id; ``params`` fill its placeholders."""

    key = "error.generic"

    def __init__(self, key: str | None = None, **params: Any) -> None:
        self.key = key or type(self).key
        self.params = params
        super().__init__(f"{self.key} {params}" if params else self.key)


class NotFound(DomainError):
    key = "error.not_found"


class Forbidden(DomainError):
    """The actor may not do this (wrong role, someone else's case, a forged button)."""

    key = "error.forbidden"


class AlreadyDone(DomainError):
    """The same update arrived again: its effect is already saved."""

    key = "error.already_done"
