"""Domain errors: each carries a message id the handler translates for the user."""

from __future__ import annotations

from typing import Any

from bot.i18n import N_


class DomainError(Exception):
    """A rule said no. ``key`` is a message id; ``params`` fill its placeholders."""

    key = N_("error.generic")

    def __init__(self, key: str | None = None, *, subject: tuple[str, object] | None = None, **params: Any) -> None:
        self.key = key or type(self).key
        self.params = params
        self.subject = subject  # (object type, id) the refused action was aimed at, for the audit log
        super().__init__(f"{self.key} {params}" if params else self.key)


class NotFound(DomainError):
    key = N_("error.not_found")


class Forbidden(DomainError):
    """The actor may not do this (wrong role, someone else's case, a forged button)."""

    key = N_("error.forbidden")


class AlreadyDone(DomainError):
    """The same update arrived again: its effect is already saved."""

    key = N_("error.already_done")
