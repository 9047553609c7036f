"""Filters that route an update by who sent it and where they are in a flow, read from the database.

``handlers/access.py`` (group -1) loads the sender's staff record and saved flow step for every
update before any flow handler is chosen; these filters read that per-update record, so handler
registration can say ``filters.Document.ALL & RoleIs(Role.ADMIN)`` and the role still comes from
the database, on the server, for every update.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

from telegram import Update
from telegram.ext import filters

from bot.services.actor import StaffView
from bot.services.flows import FlowView
from bot.steps import Step
from bot.storage.models import Role

_MAX_REMEMBERED = 10_000


@dataclass(frozen=True)
class Caller:
    staff: StaffView | None
    flow: FlowView | None
    open_incident: int | None = None


_callers: OrderedDict[int, Caller] = OrderedDict()


def remember(update: Update, caller: Caller) -> None:
    _callers[update.update_id] = caller
    _callers.move_to_end(update.update_id)
    while len(_callers) > _MAX_REMEMBERED:
        _callers.popitem(last=False)


def caller_of(update: Update) -> Caller | None:
    return _callers.get(update.update_id)


class RoleIs(filters.UpdateFilter):
    """The sender is active staff with one of ``roles``."""

    def __init__(self, *roles: Role) -> None:
        super().__init__(name=f"RoleIs({','.join(r.value for r in roles)})")
        self.roles = roles

    def filter(self, update: Update) -> bool:
        caller = caller_of(update)
        return caller is not None and caller.staff is not None and caller.staff.role in self.roles


class HasOpenAlarm(filters.UpdateFilter):
    """The sender has an open emergency (their locations then go to it)."""

    def filter(self, update: Update) -> bool:
        caller = caller_of(update)
        return caller is not None and caller.open_incident is not None


class AtStep(filters.UpdateFilter):
    """The sender's saved conversation is at one of ``steps`` (all of one flow), or anywhere in ``flow``."""

    def __init__(self, *steps: Step, flow: type[Step] | None = None) -> None:
        flows_named = {s.flow for s in steps} | ({flow.FLOW} if flow is not None else set())
        if len(flows_named) != 1:
            raise ValueError("AtStep takes steps of exactly one flow")
        self.flow = flows_named.pop()
        self.steps = frozenset(s.value for s in steps)
        super().__init__(name=f"AtStep({self.flow}:{','.join(sorted(self.steps)) or '*'})")

    def filter(self, update: Update) -> bool:
        caller = caller_of(update)
        if caller is None or caller.flow is None or caller.flow.flow != self.flow:
            return False
        return not self.steps or caller.flow.step in self.steps
