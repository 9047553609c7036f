"""The callback context fieldbot's handlers receive: PTB's, plus who is talking and in which language."""

from __future__ import annotations

from typing import Any

from telegram.ext import Application, CallbackContext, ExtBot

from bot.i18n import DEFAULT_LOCALE, Translator, translator
from bot.runtime import Runtime
from bot.services.actor import StaffView
from bot.services.flows import FlowView

RUNTIME_KEY = "runtime"


class FieldbotContext(CallbackContext[ExtBot[None], dict[Any, Any], dict[Any, Any], dict[Any, Any]]):
    """Set up per update by :mod:`bot.handlers.access` (group -1) before any flow handler runs."""

    def __init__(self, application: Application[Any, Any, Any, Any, Any, Any],
                 chat_id: int | None = None, user_id: int | None = None) -> None:
        super().__init__(application=application, chat_id=chat_id, user_id=user_id)
        self.staff: StaffView | None = None
        self.flow: FlowView | None = None
        self.t: Translator = translator(DEFAULT_LOCALE)

    @property
    def runtime(self) -> Runtime:
        runtime = self.application.bot_data[RUNTIME_KEY]
        assert isinstance(runtime, Runtime)
        return runtime
