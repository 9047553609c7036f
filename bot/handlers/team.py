"""(being written)"""

from __future__ import annotations

from typing import Any

from telegram import Update
from telegram.ext import BaseHandler

from bot.context import FieldbotContext


def handlers() -> list[BaseHandler[Update, FieldbotContext, Any]]:
    return []
