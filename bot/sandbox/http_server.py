"""The sandbox Bot API behind a real HTTP socket: ``FakeBotApiServer`` serves a ``FakeBotApi``.

Use it where an in-process ``FakeRequest`` is not enough: to exercise PTB's real ``HTTPXRequest``
(form, JSON and multipart encodings, connection handling) or to point a separately started bot
process at it. It listens on 127.0.0.1 in a background thread and answers

* ``GET|POST /bot<token>/<method>`` with a query string, a JSON, form-urlencoded or multipart body;
* ``GET /file/bot<token>/<file_path>`` with a file's content;

``getUpdates`` long-polls (up to its ``timeout``, capped at two seconds). A simulated network failure
closes the connection without an answer, which PTB reports as ``NetworkError``.

    with FakeBotApiServer(api) as server:
        bot = telegram.Bot(token, base_url=server.base_url, base_file_url=server.file_url)
"""

from __future__ import annotations

import json
import threading
from email.parser import BytesParser
from email.policy import HTTP
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, cast
from urllib.parse import parse_qsl, urlsplit

from telegram.error import NetworkError

from bot.sandbox.botapi import ApiReply, FakeBotApi, Upload, answer_request, parse_api_path

__all__ = ["FakeBotApiServer"]


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    api: FakeBotApi


def parse_body(content_type: str, body: bytes) -> tuple[dict[str, Any], dict[str, Upload]]:
    """Decode a request body the way the Bot API accepts it: JSON, form-urlencoded or multipart."""
    media_type = content_type.split(";", 1)[0].strip().lower()
    if not body:
        return {}, {}
    if media_type == "application/json":
        data = json.loads(body)
        if not isinstance(data, dict):
            raise ValueError("the JSON body must be an object")
        return data, {}
    if media_type == "multipart/form-data":
        message = BytesParser(policy=HTTP).parsebytes(b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + body)
        params: dict[str, Any] = {}
        files: dict[str, Upload] = {}
        for part in message.iter_parts():
            name = part.get_param("name", header="content-disposition")
            if not isinstance(name, str):
                continue
            payload = part.get_payload(decode=True)
            content = payload if isinstance(payload, bytes) else b""
            filename = part.get_filename()
            if filename is not None:
                files[name] = Upload(filename, content, part.get_content_type())
            else:
                params[name] = content.decode("utf-8")
        return params, files
    return dict(parse_qsl(body.decode("utf-8"), keep_blank_values=True)), {}


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "fieldbot-sandbox-botapi"
    # The answer goes out as two writes (headers, then body); with Nagle's algorithm the second waits for
    # the client's delayed ACK of the first, about 40 ms a call on a kept-alive connection.
    disable_nagle_algorithm = True

    def do_GET(self) -> None:
        self._answer()

    def do_POST(self) -> None:
        self._answer()

    def log_message(self, format: str, *args: Any) -> None:
        """Stay quiet: tests read the FakeBotApi's call log instead."""

    def _answer(self) -> None:
        api = cast(_Server, self.server).api
        url = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        try:
            params, files = parse_body(self.headers.get("Content-Type", ""), body)
        except (ValueError, UnicodeDecodeError) as exc:
            self._send(ApiReply.error(400, f"Bad Request: can't parse request body: {exc}"))
            return
        params = {**dict(parse_qsl(url.query, keep_blank_values=True)), **params}
        target = parse_api_path(url.path)
        try:
            if target is not None and target.method is not None and target.method.lower() == "getupdates":
                api.wait_for_updates(params)
            answer = answer_request(api, self.command, url.path, params, files)
        except NetworkError:
            self.close_connection = True  # hang up without an answer, like a dropped connection
            return
        self._send(answer)

    def _send(self, answer: ApiReply | bytes) -> None:
        if isinstance(answer, bytes):
            status, payload, content_type = 200, answer, "application/octet-stream"
        else:
            status, payload, content_type = answer.status, answer.payload, "application/json"
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)


class FakeBotApiServer:
    """Serves one ``FakeBotApi`` over HTTP on 127.0.0.1 from a background thread."""

    def __init__(self, api: FakeBotApi, *, host: str = "127.0.0.1", port: int = 0) -> None:
        self.api = api
        self._address = (host, port)
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def root_url(self) -> str:
        if self._server is None:
            raise RuntimeError("the server is not running; call start() first")
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    @property
    def base_url(self) -> str:
        """The value for PTB's ``base_url`` (the token is appended to it)."""
        return f"{self.root_url}/bot"

    @property
    def file_url(self) -> str:
        """The value for PTB's ``base_file_url``."""
        return f"{self.root_url}/file/bot"

    def start(self) -> str:
        """Start listening (any free port unless one was given); return ``base_url``."""
        if self._server is None:
            server = _Server(self._address, _Handler)
            server.api = self.api
            self._server = server
            self._thread = threading.Thread(
                target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="fake-bot-api", daemon=True
            )
            self._thread.start()
        return self.base_url

    def stop(self) -> None:
        """Stop serving and release the port; pending long polls are abandoned."""
        server, thread = self._server, self._thread
        self._server = self._thread = None
        if server is not None:
            server.shutdown()
            server.server_close()
        if thread is not None:
            thread.join(timeout=5)

    def __enter__(self) -> FakeBotApiServer:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
