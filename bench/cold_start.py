"""Cold start to the first getUpdates, and the resident memory of the idle bot.

    python bench/cold_start.py [--full] [--runs N] [--idle SECONDS]

Starts ``python -m bot`` as a fresh process on a fresh SQLite database, pointed at the sandbox Bot
API served over HTTP on 127.0.0.1 (``FakeBotApiServer``), and measures

* the time from spawning the process to the first ``getUpdates`` request the stand-in receives
  (interpreter start, imports, settings, the migration of the new database, getMe, the command menus);
* the process's resident memory (``VmRSS`` in ``/proc/<pid>/status``) after it has sat idle, polling,
  for ``--idle`` seconds (3 s).

The anchor, measured the same way in the same run: a bare python-telegram-bot ``Application`` with one
trivial handler (a script written to a temporary file), polling the same stand-in. Each figure is the
median of ``--runs`` starts (1 at the small size, 5 with ``--full``). Targets: <= 2 s and <= 80 MiB.
Prints the figures and, last, one JSON line per row (see bench/README.md); it is not a test.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bot.sandbox.botapi import ApiReply, FakeBotApi, Upload  # noqa: E402
from bot.sandbox.harness import TOKEN  # noqa: E402
from bot.sandbox.http_server import FakeBotApiServer  # noqa: E402

START_TARGET_S = 2.0
RSS_TARGET_MIB = 80.0

BARE_PTB = textwrap.dedent("""
    import sys

    from telegram import Update
    from telegram.ext import ApplicationBuilder, ContextTypes, MessageHandler, filters


    async def echo(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        await update.effective_message.reply_text("ok")


    application = (ApplicationBuilder().token(sys.argv[1]).base_url(sys.argv[2]).base_file_url(sys.argv[3])
                   .build())
    application.add_handler(MessageHandler(filters.TEXT, echo))
    application.run_polling(allowed_updates=Update.ALL_TYPES)
""")


class TimedApi(FakeBotApi):
    """The stand-in, noting when the first ``getUpdates`` arrives."""

    def __init__(self) -> None:
        super().__init__()
        self.first_poll: float | None = None
        self.polled = threading.Event()

    def handle(self, method: str, params: Mapping[str, Any], files: Mapping[str, Upload] | None = None) -> ApiReply:
        if method.lower() == "getupdates" and self.first_poll is None:
            self.first_poll = time.perf_counter()
            self.polled.set()
        return super().handle(method, params, files)


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for process {pid}")


def start_once(argv: list[str], env: dict[str, str], idle: float) -> tuple[float, float]:
    """Spawn ``argv`` against a fresh stand-in: (seconds to the first getUpdates, idle RSS in MiB)."""
    api = TimedApi()
    with FakeBotApiServer(api) as server:
        assert server._server is not None  # a long poll cut short by the stop is not worth a traceback
        server._server.handle_error = lambda request, address: None  # type: ignore[method-assign]
        full_argv = [arg.format(base=server.base_url, file=server.file_url) for arg in argv]
        run_env = {**env, "FIELDBOT_API_BASE_URL": server.base_url, "FIELDBOT_API_FILE_URL": server.file_url}
        spawned = time.perf_counter()
        process = subprocess.Popen(full_argv, env=run_env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                   text=True, cwd=ROOT)
        try:
            deadline = spawned + 60
            while not api.polled.wait(0.005):
                if process.poll() is not None or time.perf_counter() > deadline:
                    output = process.communicate(timeout=10)[0] if process.poll() is not None else ""
                    raise RuntimeError(f"{' '.join(argv[:3])} never polled:\n{output[-2000:]}")
            assert api.first_poll is not None
            seconds = api.first_poll - spawned
            time.sleep(idle)
            if process.poll() is not None:
                raise RuntimeError(f"{' '.join(argv[:3])} exited while idle:\n{process.communicate()[0][-2000:]}")
            memory = rss_mib(process.pid)
        finally:
            process.terminate()
            try:
                process.communicate(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.communicate()
    return seconds, memory


def row(name: str, figure: float, unit: str, anchor: float, anchor_what: str, target: str, met: bool,
        size: str) -> dict[str, Any]:
    return {"bench": "cold_start", "row": name, "figure": round(figure, 3), "unit": unit, "anchor": round(anchor, 3),
            "anchor_what": anchor_what, "ratio": round(figure / anchor, 2) if anchor else None, "target": target,
            "met": met, "size": size}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full", action="store_true", help="5 starts of each instead of 1")
    parser.add_argument("--runs", type=int, default=None, help="starts of each (the median is reported)")
    parser.add_argument("--idle", type=float, default=3.0, help="seconds idle before reading the RSS")
    args = parser.parse_args()
    runs = args.runs or (5 if args.full else 1)
    size = "full" if args.full else "small"

    base_env = {k: v for k, v in os.environ.items() if not k.startswith("FIELDBOT_")}
    base_env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), base_env.get("PYTHONPATH")]))
    bot_times: list[float] = []
    bot_rss: list[float] = []
    bare_times: list[float] = []
    bare_rss: list[float] = []
    with tempfile.TemporaryDirectory() as folder:
        bare_script = Path(folder) / "bare_ptb.py"
        bare_script.write_text(BARE_PTB)
        for run in range(runs):  # interleaved, so both see the same machine
            fresh = Path(folder) / f"run{run}"
            env = {**base_env, "FIELDBOT_TOKEN": TOKEN, "FIELDBOT_DATABASE_URL": f"sqlite+aiosqlite:///{fresh}/f.db",
                   "FIELDBOT_DATA_DIR": str(fresh / "data"), "FIELDBOT_LOG_LEVEL": "WARNING"}
            seconds, memory = start_once([sys.executable, "-m", "bot"], env, args.idle)
            bot_times.append(seconds)
            bot_rss.append(memory)
            seconds, memory = start_once([sys.executable, str(bare_script), TOKEN, "{base}", "{file}"], base_env,
                                         args.idle)
            bare_times.append(seconds)
            bare_rss.append(memory)
            print(f"run {run + 1}/{runs}: fieldbot {bot_times[-1]:.2f} s / {bot_rss[-1]:.1f} MiB; "
                  f"bare PTB {bare_times[-1]:.2f} s / {bare_rss[-1]:.1f} MiB", flush=True)

    start, rss = statistics.median(bot_times), statistics.median(bot_rss)
    bare_start, bare_mem = statistics.median(bare_times), statistics.median(bare_rss)
    print(f"cold start to the first getUpdates: {start:.2f} s (bare PTB {bare_start:.2f} s, "
          f"{start / bare_start:.2f}x; target <= {START_TARGET_S:g} s)")
    print(f"idle RSS after {args.idle:g} s: {rss:.1f} MiB (bare PTB {bare_mem:.1f} MiB, {rss / bare_mem:.2f}x; "
          f"target <= {RSS_TARGET_MIB:g} MiB)")
    print(json.dumps(row("first getUpdates", start, "s", bare_start, "bare PTB Application, same stand-in",
                         f"<= {START_TARGET_S:g} s", start <= START_TARGET_S, size)))
    print(json.dumps(row("idle RSS", rss, "MiB", bare_mem, "bare PTB Application, same stand-in",
                         f"<= {RSS_TARGET_MIB:g} MiB", rss <= RSS_TARGET_MIB, size)))


if __name__ == "__main__":
    main()
