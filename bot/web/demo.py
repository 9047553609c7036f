"""``fieldbot console-demo``: the supervisor's console on this machine, on a demo office, without a token.

A throw-away database is filled with the console's demo office (``bot/sandbox/console_office.py``: two
teams, cases, reports waiting with a photo and a recording, an open alarm with its trail), the console is
served on 127.0.0.1, and a link per person is printed. Each link carries Mini App sign-in data signed
with the sandbox's bot token in the ``#tgWebAppData=`` fragment, as Telegram opens a Mini App; the page
sends it in a header, never in a URL. The demo's clock stands still, so the links stay valid while it runs.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

if TYPE_CHECKING:
    from bot.config import Settings


def register(sub: Any) -> None:
    """Add ``console-demo`` to the ``fieldbot`` parser's subcommands."""
    parser = sub.add_parser("console-demo", help="serve the supervisor's console on 127.0.0.1 with demo data and "
                                                 "print sign-in links (no token needed)")
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--lang", default="zh_CN", choices=["zh_CN", "en"])
    parser.set_defaults(func=cmd_console_demo)


async def serve_demo(*, port: int, lang: str, ready: asyncio.Event | None = None,
                     stop: asyncio.Event | None = None) -> int:
    """Seed the demo office, serve the console until ``stop`` (or Ctrl+C), printing the sign-in links."""
    from bot.clock import ManualClock
    from bot.sandbox import console_office
    from bot.sandbox.harness import TOKEN, BotHarness, sandbox_settings
    from bot.sandbox.webapp import console_link, sign_init_data
    from bot.web.server import ConsoleServer

    start = datetime.now(ZoneInfo("Asia/Shanghai")).replace(hour=9, minute=0, second=0, microsecond=0)
    with tempfile.TemporaryDirectory(prefix="fieldbot-console-") as folder:
        harness = BotHarness(sandbox_settings(Path(folder) / "data", default_locale=lang), ManualClock(start))
        await harness.start()
        try:
            await console_office.seed(harness)
            server = ConsoleServer(harness.runtime, TOKEN, host="127.0.0.1", port=port)
            await server.start()
            base = f"http://127.0.0.1:{server.port}"
            print(f"The supervisor's console (demo data) is at {base}; open a link in a browser:")
            for who, user_id, role in (("王主管", console_office.BOSS, "supervisor, team A"),
                                       ("刘组长", console_office.LEAD, "team lead, team A (reads only)"),
                                       ("陈行政", console_office.ADMIN, "admin office, every team"),
                                       ("赵主管", console_office.ZED, "supervisor, team B")):
                init_data = sign_init_data(TOKEN, user_id, auth_date=harness.clock.now(), first_name=who,
                                           language_code="zh" if lang == "zh_CN" else "en")
                print(f"  {who} ({role}):\n    {console_link(base, init_data)}")
            print("Ctrl+C stops it; the demo database is thrown away.", flush=True)
            if ready is not None:
                ready.set()
            try:
                await (stop.wait() if stop is not None else asyncio.Event().wait())
            finally:
                await server.stop()
        finally:
            await harness.close()
    return 0


def cmd_console_demo(settings: Settings, args: argparse.Namespace) -> int:
    import logging

    logging.getLogger().setLevel(logging.WARNING)
    try:
        return asyncio.run(serve_demo(port=args.port, lang=args.lang))
    except KeyboardInterrupt:
        return 0
