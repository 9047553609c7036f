"""``fieldbot console-demo`` serves the console on demo data and prints sign-in links that work."""

from __future__ import annotations

import asyncio
import re
from urllib.parse import unquote

import httpx
import pytest

from bot.web.demo import serve_demo


async def test_the_console_demo_prints_links_that_sign_in(capsys: pytest.CaptureFixture[str]) -> None:
    ready, stop = asyncio.Event(), asyncio.Event()
    task = asyncio.create_task(serve_demo(port=0, lang="en", ready=ready, stop=stop))
    try:
        await asyncio.wait_for(ready.wait(), 60)
        printed = capsys.readouterr().out
        links = re.findall(r"(http://127\.0\.0\.1:\d+)/#tgWebAppData=(\S+)", printed)
        assert len(links) == 4, printed
        base, fragment = links[0]
        async with httpx.AsyncClient(base_url=base) as client:
            me = await client.get("/api/me", headers={"Authorization": f"tma {unquote(fragment)}"})
            assert me.status_code == 200 and me.json()["role"] == "supervisor"
            cases = await client.post("/api/cases/search", json={},
                                      headers={"Authorization": f"tma {unquote(fragment)}"})
            assert cases.json()["total"] == 3
    finally:
        stop.set()
        assert await asyncio.wait_for(task, 30) == 0
