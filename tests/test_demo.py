"""``fieldbot demo`` runs every scene against the stand-in and prints a readable transcript."""

from __future__ import annotations

import io

import pytest

from bot.demo import run_demo


@pytest.mark.sqlite_only("fieldbot demo plays in a temporary folder of SQLite files; its restore scene restores "
                        "into a SQLite file")
@pytest.mark.parametrize(
    ("lang", "expected"),
    [
        ("zh_CN", ["欢迎，张三！", "新增 3 件，更新 0 件，未变 0 件，拒收 1 行。", "您有 1 件新案件",
                   "报告已提交（第 1 版）", "外访报告已由 王主管 审核通过", "已批准延期", "📊 周报",
                   "🆘 紧急求助 #1：张三", "已结束：已安全解决", "的交接 #1 已完成，账号已停用",
                   "设置法律保全 #1", "🩺 fieldbot 系统状态", "审计日志校验通过",
                   "须在 2026/12/15 18:00 前完成", "周外访 的今日外访计划", "标记为恶意拖欠", "电催交接的案件 ZS-0101",
                   "助学贷款违约率 100.0%"]),
        ("en", ["Welcome, Zhang San!", "3 new, 0 updated, 0 unchanged, 1 rejected.", "You have 1 new case(s)",
                "Report filed (version 1)", "was approved by Wang (supervisor)", "Extension approved",
                "📊 Weekly report", "🆘 EMERGENCY #1: Zhang San", "is closed: Resolved safely",
                "Handover #1 of Zhang San is complete; the account is deactivated.",
                "Legal hold #1 placed", "🩺 fieldbot status", "audit log verified",
                "visit case ZS-0101 (上海市黄浦区南京东路300号) by 12/15/26", "📋 Zhou (field)'s plan for Dec 15, 2026",
                "🚩 Zhou (field) flags case ZS-0101", "The field visit handed to you on case ZS-0101",
                "🎯 Student loan default rate 100.0%; target at most 5%"]),
    ],
)
async def test_demo_plays_every_scene(lang: str, expected: list[str]) -> None:
    out = io.StringIO()
    assert await run_demo(lang=lang, out=out) == 0
    transcript = out.getvalue()
    for text in expected:
        assert text in transcript
