"""Run the console on the bot's own event loop: ``uvicorn.Server(...).serve()`` as a task, stopped at shutdown.

The bot's process owns the signals (PTB stops on SIGINT/SIGTERM and then shuts the console down), so the
server here installs no signal handlers of its own. Off unless ``FIELDBOT_WEB_PORT`` is set.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Generator

import uvicorn

from bot.config import ConfigError
from bot.runtime import Runtime
from bot.web.app import create_app

log = logging.getLogger(__name__)

STOP_TIMEOUT_S = 5.0


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:  # the bot's process handles the signals
        yield


class ConsoleServer:
    def __init__(self, runtime: Runtime, bot_token: str, *, host: str | None = None, port: int | None = None) -> None:
        settings = runtime.settings
        config = uvicorn.Config(create_app(runtime, bot_token), host=host or settings.web_listen,
                                port=settings.web_port if port is None else port, lifespan="off",
                                log_level="warning", access_log=False, server_header=False,
                                proxy_headers=True, forwarded_allow_ips="127.0.0.1")
        self.server = _Server(config)
        self._task: asyncio.Task[None] | None = None
        self._socket: socket.socket | None = None

    @property
    def port(self) -> int | None:
        """The port it listens on (the one the system chose, for port 0), once started."""
        return int(self._socket.getsockname()[1]) if self._socket is not None else None

    def _bind(self) -> socket.socket:
        config = self.server.config
        family = socket.AF_INET6 if ":" in config.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((config.host, config.port))
        except OSError as exc:
            sock.close()
            raise ConfigError(f"FIELDBOT_WEB_PORT: the console cannot listen on {config.host}:{config.port} "
                              f"({exc.strerror or exc})") from None
        sock.set_inheritable(True)
        return sock

    async def _serve(self, sock: socket.socket) -> None:
        try:
            await self.server.serve(sockets=[sock])
        except SystemExit:  # uvicorn's way of giving up at start-up; the bot must not exit with it
            log.error("the console stopped at start-up")

    async def start(self) -> None:
        """Start serving; returns once the socket listens (a port that cannot be had is a ConfigError here)."""
        self._socket = self._bind()
        self._task = asyncio.create_task(self._serve(self._socket), name="fieldbot-console")
        while not self.server.started:
            if self._task.done():
                raise ConfigError("FIELDBOT_WEB_PORT: the console could not start (see the log)")
            await asyncio.sleep(0.02)
        log.info("console listening on %s:%s", self.server.config.host, self.port)

    async def stop(self) -> None:
        if self._task is None:
            return
        self.server.should_exit = True
        try:
            await asyncio.wait_for(asyncio.shield(self._task), STOP_TIMEOUT_S)
        except TimeoutError:
            self.server.force_exit = True
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self._task = None
        if self._socket is not None:
            self._socket.close()
            self._socket = None
