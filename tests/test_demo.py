"""``fieldbot demo`` runs every scene against the stand-in and prints a readable transcript."""

from __future__ import annotations

import io

import pytest

from bot.demo import run_demo


@pytest.mark.parametrize(("lang", "greeting"), [("zh_CN", "欢迎，张三！"), ("en", "Welcome, Zhang San!")])
async def test_demo_prints_the_onboarding_scene(lang: str, greeting: str) -> None:
    out = io.StringIO()
    assert await run_demo(lang=lang, out=out) == 0
    transcript = out.getvalue()
    assert greeting in transcript
    assert "/start" in transcript and "🤖 →" in transcript
