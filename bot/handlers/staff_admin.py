"""/invite: the admin office registers a person in the bot (role, team, supervisor, name) and gets their code.

The same as ``fieldbot staff add``: a staff record and a single-use invite code with its t.me link,
which the person opens (or sends ``/start <code>``) to register their Telegram account.
"""

from __future__ import annotations

from typing import Any

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.error import TelegramError
from telegram.ext import BaseHandler, CallbackQueryHandler, CommandHandler, MessageHandler, filters

from bot.buttons import InviteNoSupervisor, InviteRole, InviteSupervisor, InviteTeam, Word
from bot.context import FieldbotContext
from bot.handlers.common import ignore_replays, pressed, refuse, serves, show, write_once
from bot.handlers.routing import AtStep
from bot.i18n import all_translations
from bot.keyboards import ROLE_LABELS
from bot.services import flows, invites, policy, staff_office
from bot.services.errors import DomainError
from bot.services.policy import Action
from bot.steps import InviteStep
from bot.storage.models import Role

STALE = "error.stale_button"
DEFAULT_BOT_USERNAME = "fieldbot_bot"


def _role_of(data: dict[str, Any]) -> Role:
    try:
        return Role(str(data.get("role")))
    except ValueError as error:
        raise DomainError(STALE) from error


def _bot_username(context: FieldbotContext) -> str:
    try:
        return context.bot.username or DEFAULT_BOT_USERNAME
    except (RuntimeError, TelegramError):  # not initialized (no getMe yet)
        return DEFAULT_BOT_USERNAME


@serves(Action.STAFF_INVITE)
async def begin(update: Update, context: FieldbotContext) -> None:
    staff = context.staff
    assert staff is not None
    t = context.t
    try:
        async with context.runtime.db.write() as session:
            policy.require_role(staff, Action.STAFF_INVITE)
            await flows.enter(session, staff.id, InviteStep.ROLE, {}, now=context.runtime.clock.now())
    except DomainError as error:
        await refuse(update, context, error, what="invite.start")
        return
    buttons = [[InlineKeyboardButton(t(ROLE_LABELS[role]), callback_data=InviteRole(Word(role.value)).pack())]
               for role in Role]
    await show(update, context, t("invite.pick_role"), InlineKeyboardMarkup(buttons), edit=False)


@serves(Action.STAFF_INVITE)
@ignore_replays
async def role_chosen(update: Update, context: FieldbotContext) -> None:
    staff, flow, t = context.staff, context.flow, context.t
    assert staff is not None
    try:
        role = _role_of({"role": pressed(update, InviteRole).role})
        async with write_once(update, context) as session:
            if flow is None or flow.at is not InviteStep.ROLE:
                raise DomainError(STALE)
            teams = await staff_office.teams(session, staff)
            await flows.enter(session, staff.id, InviteStep.TEAM, {"role": role.value, "teams": teams},
                              now=context.runtime.clock.now())
    except DomainError as error:
        await refuse(update, context, error, what="invite.role")
        return
    buttons = [[InlineKeyboardButton(team, callback_data=InviteTeam(n).pack())] for n, team in enumerate(teams, 1)]
    buttons.append([InlineKeyboardButton(t("invite.no_team"), callback_data=InviteTeam(0).pack())])
    await show(update, context, t("invite.pick_team", role=t(ROLE_LABELS[role])), InlineKeyboardMarkup(buttons))


async def _team_chosen(update: Update, context: FieldbotContext, team: str | None) -> None:
    """The team is known: ask for the supervisor (field collectors), else the name."""
    staff, flow, t = context.staff, context.flow, context.t
    assert staff is not None
    try:
        async with write_once(update, context) as session:
            if flow is None or flow.at is not InviteStep.TEAM:
                raise DomainError(STALE)
            role = _role_of(flow.data)
            team = staff_office.clean_team(team)
            data = {"role": role.value, "team": team}
            bosses = await staff_office.supervisors(session, staff, team) if staff_office.needs_supervisor(role) \
                else []
            step = InviteStep.SUPERVISOR if bosses else InviteStep.NAME
            await flows.enter(session, staff.id, step, data, now=context.runtime.clock.now())
    except DomainError as error:
        await refuse(update, context, error, what="invite.team")
        return
    if bosses:
        buttons = [[InlineKeyboardButton(b.name, callback_data=InviteSupervisor(b.id).pack())] for b in bosses]
        buttons.append([InlineKeyboardButton(t("invite.no_supervisor"), callback_data=InviteNoSupervisor().pack())])
        await show(update, context, t("invite.pick_supervisor", team=team or "-"), InlineKeyboardMarkup(buttons),
                   edit=False)
    else:
        await show(update, context, t("invite.ask_name"), edit=False)


@serves(Action.STAFF_INVITE)
@ignore_replays
async def team_pressed(update: Update, context: FieldbotContext) -> None:
    flow = context.flow
    choice = pressed(update, InviteTeam).choice
    teams = [str(x) for x in flow.data.get("teams", [])] if flow is not None else []
    if choice > len(teams):
        await refuse(update, context, DomainError(STALE), what="invite.team")
        return
    await _team_chosen(update, context, teams[choice - 1] if choice else None)


@serves(Action.STAFF_INVITE)
@ignore_replays
async def team_typed(update: Update, context: FieldbotContext) -> None:
    message = update.effective_message
    assert message is not None and message.text is not None
    await _team_chosen(update, context, message.text)


async def _supervisor_chosen(update: Update, context: FieldbotContext, supervisor_id: int | None) -> None:
    staff, flow = context.staff, context.flow
    assert staff is not None
    try:
        async with write_once(update, context) as session:
            if supervisor_id is not None:
                await policy.require(session, staff, Action.STAFF_INVITE, supervisor_id)
            if flow is None or flow.at is not InviteStep.SUPERVISOR:
                raise DomainError(STALE)
            await flows.enter(session, staff.id, InviteStep.NAME, {**flow.data, "supervisor": supervisor_id},
                              now=context.runtime.clock.now())
    except DomainError as error:
        await refuse(update, context, error, what="invite.supervisor")
        return
    await show(update, context, context.t("invite.ask_name"), edit=False)


@serves(Action.STAFF_INVITE)
@ignore_replays
async def supervisor_pressed(update: Update, context: FieldbotContext) -> None:
    await _supervisor_chosen(update, context, pressed(update, InviteSupervisor).staff_id)


@serves(Action.STAFF_INVITE)
@ignore_replays
async def no_supervisor(update: Update, context: FieldbotContext) -> None:
    await _supervisor_chosen(update, context, None)


@serves(Action.STAFF_INVITE)
@ignore_replays
async def name_typed(update: Update, context: FieldbotContext) -> None:
    message, flow, staff, t = update.effective_message, context.flow, context.staff, context.t
    assert message is not None and message.text is not None and flow is not None and staff is not None
    try:
        async with write_once(update, context) as session:
            role = _role_of(flow.data)
            supervisor = flow.data.get("supervisor")
            member, code = await staff_office.invite(
                session, staff, name=message.text, role=role, team=flow.data.get("team"),
                supervisor_id=int(supervisor) if supervisor is not None else None, now=context.runtime.clock.now())
            await flows.clear(session, staff.id, InviteStep.FLOW)
    except DomainError as error:
        await refuse(update, context, error, what="invite.name")
        return
    await show(update, context, t("invite.done", id=member.id, name=member.name, role=t(ROLE_LABELS[role]),
                                  team=member.team or "-", code=code,
                                  link=invites.deep_link(_bot_username(context), code)), edit=False)


def handlers() -> list[BaseHandler[Update, FieldbotContext, Any]]:
    text = filters.TEXT & ~filters.COMMAND
    return [
        CommandHandler("invite", begin),
        MessageHandler(filters.Text(all_translations("menu.invite")), begin),
        CallbackQueryHandler(role_chosen, pattern=InviteRole.pattern()),
        CallbackQueryHandler(team_pressed, pattern=InviteTeam.pattern()),
        MessageHandler(text & AtStep(InviteStep.TEAM), team_typed),
        CallbackQueryHandler(supervisor_pressed, pattern=InviteSupervisor.pattern()),
        CallbackQueryHandler(no_supervisor, pattern=InviteNoSupervisor.pattern()),
        MessageHandler(text & AtStep(InviteStep.NAME), name_typed),
    ]
