"""The composition root: builds the one ``Application`` with every handler, job and service wired in."""

from __future__ import annotations

import gc
import logging
from typing import Any
from zoneinfo import ZoneInfo

from telegram import BotCommandScopeDefault, Update
from telegram.ext import (
    Application,
    ApplicationBuilder,
    ApplicationHandlerStop,
    BaseHandler,
    CallbackQueryHandler,
    ContextTypes,
    Defaults,
    MessageHandler,
    filters,
)
from telegram.request import BaseRequest

from bot.clock import Clock, SystemClock
from bot.config import Settings
from bot.context import RUNTIME_KEY, FieldbotContext
from bot.handlers import (
    access,
    assign,
    branch_report,
    case_desk,
    emergency,
    extension,
    flag,
    handover,
    intake,
    onboarding,
    procedure,
    reports,
    review,
    staff_admin,
    status,
    team,
    tofield,
    visit_report,
    visits,
)
from bot.handlers.routing import caller_of
from bot.handlers.throttle import PerUserUpdateProcessor
from bot.i18n import SUPPORTED_LOCALES, Translator, resolve_locale, translator
from bot.keyboards import commands_for
from bot.ratelimit import FieldbotRateLimiter, Pacer
from bot.runtime import Runtime
from bot.services import incidents, leases
from bot.services import staff as staff_service
from bot.storage import migrate
from bot.storage.db import Database

log = logging.getLogger(__name__)

FieldbotApplication = Application[Any, FieldbotContext, Any, Any, Any, Any]

# Telegram language codes for which the default command menu is published.
MENU_LANGUAGES = {"zh_CN": "zh", "en": "en"}


async def _not_understood(update: Update, context: FieldbotContext) -> None:
    if context.staff is not None and update.effective_chat is not None and update.effective_message is not None:
        log.info("unhandled message from staff %s", context.staff.id)
        await context.bot.send_message(update.effective_chat.id, context.t("error.not_understood"))


async def _stale_button(update: Update, context: FieldbotContext) -> None:
    """A button no handler knows (an old keyboard, or a forged one): say so, change nothing."""
    if update.callback_query is not None:
        log.info("unknown button %r from staff %s", update.callback_query.data,
                 context.staff.id if context.staff else None)
        await update.callback_query.answer(context.t("error.stale_button"), show_alert=True)


def _caller_translator(update: Update, context: FieldbotContext) -> Translator:
    """The caller's language even when the access gate did not get to set ``context.t``."""
    staff = context.staff
    if staff is None:
        caller = caller_of(update)
        staff = caller.staff if caller is not None else None
    user = update.effective_user
    default = context.runtime.settings.default_locale
    return translator(resolve_locale(staff.locale if staff is not None else None,
                                     user.language_code if user is not None else None, default))


async def _on_error(update: object, context: FieldbotContext) -> None:
    """Log the error, tell the person in their language (private chats only), and stop this update.

    Stopping matters when the access gate itself failed: the flow handlers must never see an update
    whose sender was not identified.
    """
    log.error("error while handling an update", exc_info=context.error)
    if isinstance(update, Update) and update.effective_chat is not None and update.effective_chat.type == "private":
        try:
            await context.bot.send_message(update.effective_chat.id,
                                           _caller_translator(update, context)("error.internal"))
        except Exception:  # the error path must never raise again
            log.exception("could not tell the user about the error")
    raise ApplicationHandlerStop


def flow_handlers() -> list[BaseHandler[Update, FieldbotContext, Any]]:
    """Every flow's handlers in one group (the first match wins), the fallback last."""
    return [
        *emergency.first_handlers(),
        *onboarding.handlers(),
        *intake.handlers(),
        *assign.handlers(),
        *visits.handlers(),
        *visit_report.handlers(),
        *review.handlers(),
        *extension.handlers(),
        *reports.handlers(),
        *status.handlers(),
        *case_desk.handlers(),
        *team.handlers(),
        *procedure.handlers(),
        *staff_admin.handlers(),
        *emergency.handlers(),
        *handover.handlers(),
        *tofield.handlers(),
        *flag.handlers(),
        *branch_report.handlers(),
        *visits.fallback_handlers(),
        *intake.fallback_handlers(),
        MessageHandler(filters.ChatType.PRIVATE & ~filters.COMMAND, _not_understood),
        CallbackQueryHandler(_stale_button),
    ]


def freeze_startup_heap() -> None:
    """Move everything loaded at start-up out of the garbage collector's way.

    A full collection walks every tracked object and holds the event loop while it does (about 100 ms
    here, measured by bench/sweep_latency.py); frozen start-up objects are not walked again. No
    collection first: at this point it finds a few dozen unreachable objects and costs ~70 ms of the
    start (bench/cold_start.py); freezing alone is instant.
    """
    gc.freeze()


async def offer_to_resume(runtime: Runtime) -> None:
    """After a restart, each collector with an unfinished visit report is offered to carry on."""
    from bot.services import visits as visit_service

    async with runtime.db.write() as session:
        offered = await visit_service.offer_resume(session, now=runtime.clock.now())
    if offered:
        log.info("offered %s collectors to resume their visit reports", offered)


async def publish_default_commands(application: FieldbotApplication) -> None:
    for locale in SUPPORTED_LOCALES:
        commands = commands_for(translator(locale), None)
        await application.bot.set_my_commands(commands, scope=BotCommandScopeDefault(),
                                              language_code=MENU_LANGUAGES[locale])
    await application.bot.set_my_commands(commands_for(translator(application.bot_data[RUNTIME_KEY]
                                                                  .settings.default_locale), None))


def build_application(
    settings: Settings,
    *,
    token: str | None = None,
    request: BaseRequest | None = None,
    updates_request: BaseRequest | None = None,
    database: Database | None = None,
    clock: Clock | None = None,
    migrate_on_start: bool = True,
) -> FieldbotApplication:
    """Build the bot. Tests and the demo pass a stand-in ``request``; production passes nothing."""
    runtime = Runtime(settings=settings, db=database or Database(settings.database_url), clock=clock or SystemClock())
    for locale in SUPPORTED_LOCALES:  # read the catalogs now, not in the middle of the first sweep
        translator(locale)

    started = False  # post_init got as far as a migrated database
    shared = None
    if settings.redis_url:  # several instances of one bot: Telegram's limits are per token, kept in Redis
        from bot.send_budget import connect

        shared = connect(settings.redis_url, token or settings.require_token())
    # the one sending budget: replies and the outbox sender (scheduler/outbox_sender.py)
    pacer = Pacer(shared=shared)
    console: Any = None  # the supervisor's console (bot/web/server.py), when FIELDBOT_WEB_PORT is set

    async def post_init(application: FieldbotApplication) -> None:
        nonlocal started, console
        if migrate_on_start:
            await migrate.ensure_current(runtime.db)  # Alembic only if an upgrade is due
        started = True
        await publish_default_commands(application)
        await offer_to_resume(runtime)
        from scheduler.jobs import register_heartbeat, register_jobs, register_sender

        if settings.sweeps:
            register_sender(application, pacer)  # runs once the application starts (the job queue's first tick)
            register_jobs(application)
        else:  # only answers updates: a worker sweeps and sends (an alert a handler queued is still sent at once)
            register_heartbeat(application)
        if settings.web_port:
            from bot.web.server import ConsoleServer

            console = ConsoleServer(runtime, application.bot.token)
            await console.start()
        freeze_startup_heap()

    async def post_shutdown(application: FieldbotApplication) -> None:
        from scheduler.jobs import stop_sender

        if console is not None:
            await console.stop()
        await stop_sender(application)  # claims it will not send are given back
        if started:  # a start that failed earlier (no Bot API, say) never held a lease, maybe not even tables
            try:
                await leases.release(runtime.db, runtime.instance_id)  # another process may take the sweeps at once
            except Exception as exc:  # the lease then expires on its own
                log.warning("could not release the sweep lease: %s", exc)
        if shared is not None:
            await shared.close()
        await runtime.media.close()  # an object store's client
        if database is None:
            await runtime.db.dispose()

    async def alarm_open(telegram_user_id: int) -> bool:
        async with runtime.db.read() as session:
            staff = await staff_service.active_by_telegram_id(session, telegram_user_id)
            return staff is not None and await incidents.open_for(session, staff.id) is not None

    application: FieldbotApplication

    builder = (
        ApplicationBuilder()
        .token(token or settings.require_token())
        .base_url(settings.api_base_url)
        .base_file_url(settings.api_file_url)
        .local_mode(settings.local_mode)
        .defaults(Defaults(tzinfo=ZoneInfo(settings.timezone)))
        .rate_limiter(FieldbotRateLimiter(reply_retries=3, pacer=pacer))
        .context_types(ContextTypes(context=FieldbotContext))
        .post_init(post_init)
        .post_shutdown(post_shutdown)
        .concurrent_updates(PerUserUpdateProcessor(
            rate=settings.throttle_rate, burst=settings.throttle_burst, alarm_open=alarm_open,
            draining=lambda: application.running and application.updater is not None
            and not application.updater.running))
    )
    if request is not None:
        builder = builder.request(request).get_updates_request(updates_request or request)
    elif settings.proxy is not None:  # a server that reaches Telegram only through a proxy
        builder = builder.proxy(settings.proxy).get_updates_proxy(settings.proxy)
    application = builder.build()
    application.bot_data[RUNTIME_KEY] = runtime
    application.add_handlers(access.handlers(), group=access.GROUP)
    application.add_handlers(flow_handlers())
    application.add_error_handler(_on_error)
    return application
