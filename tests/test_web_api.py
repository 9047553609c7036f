"""The supervisor's console over HTTP (Starlette, through httpx's ASGI transport) on a harness database:
sign-in exactly as Telegram signs Mini App data, the permission policy on every endpoint, the security
headers and the per-person rate limit."""

from __future__ import annotations

import io
import json
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qsl, urlencode

import httpx
import pytest
from sqlalchemy import func, select

from bot.sandbox import console_office as office_data
from bot.sandbox.console_office import ADMIN, ANN, BOSS, GONE, LEAD, ZED, ConsoleOffice
from bot.sandbox.harness import TOKEN, BotHarness
from bot.sandbox.webapp import console_link, sign_init_data
from bot.storage.models import AuditEntry, Case, OutboxMessage, Visit
from bot.web.app import content_security_policy, create_app, tile_source
from bot.web.initdata import InitDataError, data_check_string, parse, validate
from bot.web.messages import PAGE_MESSAGES


@pytest.fixture
async def office(harness: BotHarness) -> ConsoleOffice:
    return await office_data.seed(harness)


@pytest.fixture
async def client(harness: BotHarness, office: ConsoleOffice) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=create_app(harness.runtime, TOKEN))
    async with httpx.AsyncClient(transport=transport, base_url="http://console.test") as http:
        yield http


def signed(harness: BotHarness, user_id: int, *, token: str = TOKEN, age: timedelta = timedelta(minutes=1),
           language: str = "en") -> dict[str, str]:
    init_data = sign_init_data(token, user_id, auth_date=harness.clock.now() - age, language_code=language)
    return {"Authorization": f"tma {init_data}"}


async def get(client: httpx.AsyncClient, harness: BotHarness, path: str, user_id: int = BOSS,
              **kwargs: Any) -> httpx.Response:
    return await client.get(path, headers=signed(harness, user_id), **kwargs)


async def post(client: httpx.AsyncClient, harness: BotHarness, path: str, body: dict[str, Any],
               user_id: int = BOSS) -> httpx.Response:
    return await client.post(path, headers=signed(harness, user_id), json=body)


# ---- the signature, as Telegram documents it ---------------------------------------------------------------


def test_the_signer_signs_as_telegram_documents(harness: BotHarness) -> None:
    import hashlib
    import hmac

    init_data = sign_init_data("123:ABC", 42, auth_date=harness.clock.now())
    fields = parse(init_data)
    assert data_check_string(fields) == "\n".join(f"{k}={fields[k]}" for k in sorted(fields) if k != "hash")
    key = hmac.new(b"WebAppData", b"123:ABC", hashlib.sha256).digest()
    assert fields["hash"] == hmac.new(key, data_check_string(fields).encode(), hashlib.sha256).hexdigest()
    user = validate(init_data, "123:ABC", now=harness.clock.now(), max_age_s=60)
    assert (user.id, user.language_code) == (42, "en")


@pytest.mark.parametrize("change", ["hash", "field", "token", "stale", "future", "repeated", "no_user"])
def test_forged_or_stale_init_data_is_refused(harness: BotHarness, change: str) -> None:
    now = harness.clock.now()
    init_data = sign_init_data(TOKEN, 42, auth_date=now)
    fields = dict(parse_qsl(init_data))
    if change == "hash":
        fields["hash"] = "0" * 64
        init_data = urlencode(fields)
    elif change == "field":  # the user id changed after signing
        fields["user"] = fields["user"].replace("42", "43")
        init_data = urlencode(fields)
    elif change == "token":
        init_data = sign_init_data("7000000002:ANOTHER-BOT", 42, auth_date=now)
    elif change == "stale":
        init_data = sign_init_data(TOKEN, 42, auth_date=now - timedelta(hours=25))
    elif change == "future":
        init_data = sign_init_data(TOKEN, 42, auth_date=now + timedelta(minutes=10))
    elif change == "repeated":
        init_data += "&auth_date=1"
    elif change == "no_user":
        del fields["user"]
        from bot.web.initdata import signature

        fields["hash"] = signature({k: v for k, v in fields.items() if k != "hash"}, TOKEN)
        init_data = urlencode(fields)
    with pytest.raises(InitDataError):
        validate(init_data, TOKEN, now=now, max_age_s=86400)


# ---- sign-in ---------------------------------------------------------------------------------------------


async def test_a_supervisor_signs_in_in_their_language(client: httpx.AsyncClient, harness: BotHarness) -> None:
    answer = await get(client, harness, "/api/me")
    assert answer.status_code == 200, answer.text
    me = answer.json()
    assert (me["name"], me["role"], me["team"], me["locale"]) == ("王主管", "supervisor", "A", "en")
    assert set(me["messages"]) == set(PAGE_MESSAGES) and me["messages"]["web.tab.cases"] == "Cases"
    assert me["map"] == {"tiles": None, "datum": "wgs84"}
    chinese = await client.get("/api/me", headers=signed(harness, BOSS, language="zh-hans"))
    assert chinese.json()["messages"]["web.tab.cases"] == "案件"


@pytest.mark.parametrize("how", ["none", "forged", "stale", "other_bot", "wrong_scheme", "in_the_url"])
async def test_a_bad_sign_in_is_401(client: httpx.AsyncClient, harness: BotHarness, how: str) -> None:
    headers: dict[str, str] = {}
    path = "/api/me"
    if how == "forged":
        fields = dict(parse_qsl(signed(harness, BOSS)["Authorization"][4:]))
        fields["user"] = json.dumps({"id": ADMIN, "first_name": "x"})
        headers = {"Authorization": "tma " + urlencode(fields)}
    elif how == "stale":
        headers = signed(harness, BOSS, age=timedelta(hours=24, minutes=1))
    elif how == "other_bot":
        headers = signed(harness, BOSS, token="7000000002:ANOTHER-BOT")
    elif how == "wrong_scheme":
        headers = {"Authorization": "Bearer " + signed(harness, BOSS)["Authorization"][4:]}
    elif how == "in_the_url":  # initData is only ever read from the header
        path = "/api/me?" + signed(harness, BOSS)["Authorization"][4:]
    answer = await client.get(path, headers=headers)
    assert answer.status_code == 401
    assert answer.json()["error"] == "web.error.sign_in"


@pytest.mark.parametrize("who", [GONE, ANN, 999999])  # deactivated supervisor, a collector, a stranger
async def test_people_the_console_is_not_for_are_refused(client: httpx.AsyncClient, harness: BotHarness,
                                                         who: int) -> None:
    for path in ("/api/me", "/api/cases/filters", "/api/reviews", "/api/map", "/api/incidents", "/api/reports"):
        answer = await get(client, harness, path, who)
        assert answer.status_code == 403, (path, answer.text)
    async with harness.db.read() as session:
        refusals = await session.scalar(select(func.count()).select_from(AuditEntry).where(
            AuditEntry.action == "refused.console.sign_in"))
    assert refusals == 6


# ---- security headers and the rate limit --------------------------------------------------------------


@pytest.mark.parametrize("path", ["/", "/static/app.js", "/api/me", "/api/cases/999"])
async def test_security_headers_on_every_answer(client: httpx.AsyncClient, harness: BotHarness, path: str) -> None:
    answer = await get(client, harness, path)
    csp = answer.headers["content-security-policy"]
    assert "default-src 'self'" in csp and "script-src 'self' https://telegram.org" in csp
    assert "img-src 'self' data: blob:" in csp
    assert "frame-ancestors https://web.telegram.org https://*.telegram.org" in csp
    assert answer.headers["x-content-type-options"] == "nosniff"
    assert answer.headers["referrer-policy"] == "no-referrer"
    if path.startswith("/api/"):
        assert answer.headers["cache-control"] == "no-store"


def test_the_tile_host_is_allowed_for_images() -> None:
    tiles = "https://webrd0{s}.is.autonavi.com/appmaptile?lang=zh_cn&x={x}&y={y}&z={z}&style=8"
    assert tile_source(tiles) == "https://*.is.autonavi.com"
    assert "img-src 'self' data: blob: https://*.is.autonavi.com;" in content_security_policy(tiles)
    assert tile_source("https://tile.example.cn/{z}/{x}/{y}.png") == "https://tile.example.cn"


async def test_the_rate_limit_answers_429_after_the_burst(harness: BotHarness, office: ConsoleOffice) -> None:
    harness.settings.web_rate, harness.settings.web_burst = 0.5, 5
    transport = httpx.ASGITransport(app=create_app(harness.runtime, TOKEN))
    async with httpx.AsyncClient(transport=transport, base_url="http://console.test") as client:
        codes = [(await get(client, harness, "/api/me")).status_code for _ in range(7)]
        assert codes == [200] * 5 + [429] * 2
        limited = await get(client, harness, "/api/me")
        assert int(limited.headers["retry-after"]) >= 1
        assert (await get(client, harness, "/api/me", ADMIN)).status_code == 200  # per person


# ---- cases ---------------------------------------------------------------------------------------------


async def test_search_and_filters_stay_within_the_team(client: httpx.AsyncClient, harness: BotHarness,
                                                       office: ConsoleOffice) -> None:
    filters = (await get(client, harness, "/api/cases/filters")).json()
    assert {c["name"] for c in filters["collectors"]} == {"张三", "李明"} and filters["banks"] == ["招商银行"]
    everything = (await post(client, harness, "/api/cases/search", {})).json()
    assert everything["total"] == 3 and {i["case_no"] for i in everything["items"]} == {"ZS-1001", "ZS-1002",
                                                                                        "ZS-1003"}
    hit = (await post(client, harness, "/api/cases/search", {"text": "ZS-1001"})).json()
    assert hit["total"] == 1 and hit["items"][0]["debtor"] == "李*" and hit["items"][0]["collector"] == "张三"
    by_name = (await post(client, harness, "/api/cases/search", {"text": "赵六"})).json()
    assert [i["case_no"] for i in by_name["items"]] == ["ZS-1003"]
    assert (await post(client, harness, "/api/cases/search", {"text": "B-2001"})).json()["total"] == 0
    mine = (await post(client, harness, "/api/cases/search", {"collector_id": office.staff["ann"]})).json()
    assert {i["case_no"] for i in mine["items"]} == {"ZS-1001", "ZS-1002"}
    promised = (await post(client, harness, "/api/cases/search", {"status": "promised"})).json()
    assert [i["case_no"] for i in promised["items"]] == ["ZS-1001"]
    page = (await post(client, harness, "/api/cases/search", {"limit": 2, "offset": 2})).json()
    assert page["total"] == 3 and len(page["items"]) == 1
    async with harness.db.write() as session:
        case = await session.get(Case, office.cases["ZS-1002"])
        assert case is not None
        case.visit_due_at = harness.clock.now() - timedelta(hours=1)
    overdue = (await post(client, harness, "/api/cases/search", {"overdue": True})).json()
    assert [i["case_no"] for i in overdue["items"]] == ["ZS-1002"] and overdue["items"][0]["overdue"]
    harness.clock.advance(days=4)
    due = (await post(client, harness, "/api/cases/search", {"promise_due": True})).json()
    assert [i["case_no"] for i in due["items"]] == ["ZS-1001"]
    admin = (await post(client, harness, "/api/cases/search", {"text": "B-2001"}, ADMIN)).json()
    assert admin["total"] == 1


async def test_the_case_page(client: httpx.AsyncClient, harness: BotHarness, office: ConsoleOffice) -> None:
    answer = await get(client, harness, f"/api/cases/{office.cases['ZS-1001']}")
    assert answer.status_code == 200, answer.text
    page = answer.json()
    assert page["case_no"] == "ZS-1001" and page["debtor"] == "李*" and page["phone"] != "13800138000"
    assert page["assignee"] == "张三" and page["status"] == "promised"
    assert any("张三" in line for line in page["timeline"])
    [visit] = page["visits"]
    assert visit["status"] == "filed" and visit["code"] == "PTP"
    assert [e["kind"] for e in visit["evidence"]] == ["photo", "audio"]
    assert [p["status"] for p in page["promises"]] == ["open"]
    assert page["assignments"][0]["collector"] == "张三"
    assert page["actions"]["reassign"] == [{"id": office.staff["bob"], "name": "李明"}]
    assert page["actions"]["hold"] and page["actions"]["close"] and not page["actions"]["reopen"]
    paid = (await get(client, harness, f"/api/cases/{office.cases['ZS-1002']}")).json()
    assert [p["amount"] for p in paid["payments"]] == ["CN¥300.00"]
    lead = (await get(client, harness, f"/api/cases/{office.cases['ZS-1001']}", LEAD)).json()
    assert lead["actions"]["reassign"] == [] and not lead["actions"]["hold"]  # team leads read only


async def test_another_team_s_case_is_404(client: httpx.AsyncClient, harness: BotHarness,
                                          office: ConsoleOffice) -> None:
    other = office.cases["B-2001"]
    for answer in (await get(client, harness, f"/api/cases/{other}"),
                   await post(client, harness, f"/api/cases/{other}/status", {"change": "hold", "reason": "x"}),
                   await post(client, harness, f"/api/cases/{other}/reassign",
                              {"collector_id": office.staff["ann"], "reason": "x"}),
                   await get(client, harness, f"/api/cases/{office.cases['ZS-1001']}", ZED),
                   await get(client, harness, f"/api/evidence/{office.evidence['photo']}", ZED),
                   await get(client, harness, f"/api/reviews/{office.visits['ZS-1001']}", ZED),
                   await get(client, harness, f"/api/incidents/{office.incident}", ZED),
                   await get(client, harness, "/api/cases/999999")):
        assert answer.status_code == 404, answer.text
    async with harness.db.read() as session:
        case = await session.get(Case, other)
        assert case is not None and case.status == "assigned"
        refused = await session.scalar(select(func.count()).select_from(AuditEntry).where(
            AuditEntry.action.like("refused.console.%")))
    assert refused == 7
    assert (await get(client, harness, f"/api/cases/{other}", ADMIN)).status_code == 200


async def test_hold_reopen_and_reassign_through_the_chat_s_services(client: httpx.AsyncClient, harness: BotHarness,
                                                                    office: ConsoleOffice) -> None:
    case_id = office.cases["ZS-1002"]
    no_reason = await post(client, harness, f"/api/cases/{case_id}/status", {"change": "hold", "reason": " "})
    assert no_reason.status_code == 409 and no_reason.json()["error"] == "desk.error.no_reason"
    held = await post(client, harness, f"/api/cases/{case_id}/status", {"change": "hold", "reason": "debtor abroad"})
    assert held.json()["status"] == "on_hold"
    again = await post(client, harness, f"/api/cases/{case_id}/status", {"change": "hold", "reason": "twice"})
    assert again.status_code == 409
    lead = await post(client, harness, f"/api/cases/{case_id}/status", {"change": "reopen", "reason": "x"}, LEAD)
    assert lead.status_code == 404
    reopened = await post(client, harness, f"/api/cases/{case_id}/status", {"change": "reopen", "reason": "back"})
    assert reopened.json()["status"] == "assigned"
    moved = await post(client, harness, f"/api/cases/{case_id}/reassign",
                       {"collector_id": office.staff["bob"], "reason": "closer to him"})
    assert moved.status_code == 200 and moved.json() == {"moved": [case_id]}
    page = (await get(client, harness, f"/api/cases/{case_id}")).json()
    assert page["assignee"] == "李明" and page["assignments"][-1]["reason"] == "closer to him"
    cat = await post(client, harness, f"/api/cases/{case_id}/reassign",
                     {"collector_id": office.staff["cat"], "reason": "another team"})
    assert cat.status_code == 404
    async with harness.db.read() as session:
        actions = list(await session.scalars(select(AuditEntry.action).where(AuditEntry.object_type == "case",
                                                                              AuditEntry.object_id == str(case_id))))
    assert "case.hold" in actions and "case.reopen" in actions
    bad = await post(client, harness, f"/api/cases/{case_id}/status", {"change": "explode", "reason": "x"})
    assert bad.status_code == 400


async def test_photos_and_recordings_through_the_policy(client: httpx.AsyncClient, harness: BotHarness,
                                                        office: ConsoleOffice) -> None:
    photo = await get(client, harness, f"/api/evidence/{office.evidence['photo']}")
    assert photo.status_code == 200 and photo.headers["content-type"] == "image/jpeg"
    assert photo.content == office_data.photo_bytes()
    thumb = await get(client, harness, f"/api/evidence/{office.evidence['photo']}", params={"size": "thumb"})
    assert thumb.headers["content-type"] == "image/jpeg" and len(thumb.content) < len(photo.content)
    from PIL import Image

    assert max(Image.open(io.BytesIO(thumb.content)).size) <= 320
    sound = await get(client, harness, f"/api/evidence/{office.evidence['recording']}", LEAD)
    assert sound.status_code == 200 and sound.headers["content-type"] == "audio/wav"
    assert sound.headers["cache-control"] == "private, no-store"
    assert (await get(client, harness, f"/api/evidence/{office.evidence['photo']}", ZED)).status_code == 404
    assert (await get(client, harness, "/api/evidence/99999")).status_code == 404


# ---- reviews -------------------------------------------------------------------------------------------


async def test_the_review_queue_approve_and_return(client: httpx.AsyncClient, harness: BotHarness,
                                                   office: ConsoleOffice) -> None:
    queue = (await get(client, harness, "/api/reviews")).json()
    assert queue["may_review"] and [i["case_no"] for i in queue["items"]] == ["ZS-1001", "ZS-1003"]  # oldest first
    detail = (await get(client, harness, f"/api/reviews/{office.visits['ZS-1001']}")).json()
    assert "ZS-1001" in detail["summary"] and [e["kind"] for e in detail["evidence"]] == ["photo", "audio"]
    lead = (await get(client, harness, "/api/reviews", LEAD)).json()
    assert not lead["may_review"] and len(lead["items"]) == 2
    assert (await post(client, harness, f"/api/reviews/{office.visits['ZS-1001']}/approve", {}, LEAD)
            ).status_code == 404
    zed = (await get(client, harness, "/api/reviews", ZED)).json()
    assert zed["items"] == []

    approved = await post(client, harness, f"/api/reviews/{office.visits['ZS-1001']}/approve", {})
    assert approved.status_code == 200 and approved.json()["status"] == "approved"
    twice = await post(client, harness, f"/api/reviews/{office.visits['ZS-1001']}/approve", {})
    assert twice.status_code == 409 and twice.json()["error"] == "review.error.not_waiting"
    no_comment = await post(client, harness, f"/api/reviews/{office.visits['ZS-1003']}/return", {"comment": ""})
    assert no_comment.status_code == 409
    returned = await post(client, harness, f"/api/reviews/{office.visits['ZS-1003']}/return",
                          {"comment": "Photo of the door, please"})
    assert returned.json()["status"] == "returned"
    assert (await get(client, harness, "/api/reviews")).json()["items"] == []
    async with harness.db.read() as session:
        visit = await session.get(Visit, office.visits["ZS-1003"])
        assert visit is not None and visit.review_comment == "Photo of the door, please"
        notices = list(await session.scalars(select(OutboxMessage.kind).where(
            OutboxMessage.kind.in_(("review.approved", "review.returned")))))
    assert sorted(notices) == ["review.approved", "review.returned"]  # the collectors are told, as from the chat


# ---- the map, alarms and reports ---------------------------------------------------------------------


async def test_the_team_map(client: httpx.AsyncClient, harness: BotHarness, office: ConsoleOffice) -> None:
    found = (await get(client, harness, "/api/map")).json()
    assert found["team"] == "A" and found["datum"] == "wgs84"
    assert {p["label"] for p in found["cases"]} == {"ZS-1001", "ZS-1003"}  # visited today; ZS-1002 is due later
    assert len(found["visits"]) == 2 and {p["label"] for p in found["collectors"]} == {"张三", "李明"}
    [alarm] = found["incidents"]
    assert alarm["id"] == office.incident and alarm["collector"] == "李明" and len(alarm["trail"]) == 3
    assert alarm["trail"][-1]["lat"] == pytest.approx(31.2251)
    assert (await get(client, harness, "/api/map", ZED)).json()["incidents"] == []


async def test_the_map_in_gcj02_for_amap_tiles(harness: BotHarness, office: ConsoleOffice) -> None:
    from bot.services.coords import wgs84_to_gcj02

    harness.settings.web_tiles = "https://webrd0{s}.is.autonavi.com/appmaptile?x={x}&y={y}&z={z}&style=8"
    harness.settings.web_tiles_crs = "gcj02"
    transport = httpx.ASGITransport(app=create_app(harness.runtime, TOKEN))
    async with httpx.AsyncClient(transport=transport, base_url="http://console.test") as client:
        found = (await get(client, harness, "/api/map")).json()
        assert "https://*.is.autonavi.com" in (await get(client, harness, "/")).headers["content-security-policy"]
    point = next(p for p in found["cases"] if p["label"] == "ZS-1001")
    lat, lon = wgs84_to_gcj02(31.2304, 121.4737)
    assert found["datum"] == "gcj02" and point["lat"] == pytest.approx(lat, abs=1e-6)
    assert point["lon"] == pytest.approx(lon, abs=1e-6) and abs(point["lon"] - 121.4737) > 0.003


async def test_alarms_with_their_timeline_and_the_month_s_figures(client: httpx.AsyncClient, harness: BotHarness,
                                                                  office: ConsoleOffice) -> None:
    board = (await get(client, harness, "/api/incidents")).json()
    assert [a["id"] for a in board["open"]] == [office.incident] and board["open"][0]["reason"] == "SOS"
    figures = board["figures"]
    assert figures["count"] == 1 and [t["within_s"] for t in figures["targets"]] == [10.0, 40.0]
    assert [t["share"] for t in figures["targets"]] == [0.8, 0.985]
    detail = (await get(client, harness, f"/api/incidents/{office.incident}")).json()
    kinds = [e["kind"] for e in detail["events"]]
    assert kinds[0] == "raised" and kinds.count("location") == 3
    assert (await get(client, harness, "/api/incidents", ZED)).json()["open"] == []
    await harness.deliver_outbox()  # the alert is delivered: the delivery time counts
    figures = (await get(client, harness, "/api/incidents")).json()["figures"]
    assert figures["delivery"] is not None and figures["targets"][0]["met"] is not None


async def test_reports_and_the_xlsx(client: httpx.AsyncClient, harness: BotHarness, office: ConsoleOffice) -> None:
    harness.clock.advance(days=7)  # last week is the week of the seeded visits
    weekly = (await get(client, harness, "/api/reports", params={"kind": "weekly"})).json()
    assert weekly["team"] == "A" and {r["name"] for r in weekly["rows"]} == {"张三", "李明"}
    assert weekly["total"]["visits"] == 2
    xlsx = await get(client, harness, "/api/reports/xlsx", params={"kind": "weekly"})
    assert xlsx.status_code == 200 and xlsx.content[:2] == b"PK"
    assert xlsx.headers["content-disposition"].startswith('attachment; filename="weekly-A-')
    from openpyxl import load_workbook

    assert load_workbook(io.BytesIO(xlsx.content)).sheetnames
    assert (await get(client, harness, "/api/reports", params={"kind": "yearly"})).status_code == 400
    monthly = (await get(client, harness, "/api/reports", params={"kind": "monthly"}, user_id=ADMIN)).json()
    assert monthly["kind"] == "monthly" and monthly["team"] is None


async def test_the_page_and_its_assets_are_small_and_local(client: httpx.AsyncClient, harness: BotHarness) -> None:
    page = await client.get("/")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    html = page.text
    assert "https://telegram.org/js/telegram-web-app.js" in html
    assert "<script>" not in html and "style=" not in html  # nothing inline: the CSP allows no inline code
    total = len(page.content)
    for asset in ("/static/app.js", "/static/app.css"):
        answer = await client.get(asset)
        assert answer.status_code == 200
        total += len(answer.content)
    assert total < 200_000


def test_the_console_link_carries_init_data_in_the_fragment(harness: BotHarness) -> None:
    init_data = sign_init_data(TOKEN, BOSS, auth_date=harness.clock.now())
    link = console_link("http://127.0.0.1:8080", init_data)
    assert link.startswith("http://127.0.0.1:8080/#tgWebAppData=") and "?" not in link.split("#")[0]



async def test_the_evidence_bundle_download_is_checked_and_audited(client: httpx.AsyncClient, harness: BotHarness,
                                                                   office: ConsoleOffice) -> None:
    import hashlib
    import zipfile

    case_id = office.cases["ZS-1001"]
    answer = await get(client, harness, f"/api/cases/{case_id}/bundle")
    assert answer.status_code == 200 and answer.headers["content-type"] == "application/zip"
    assert answer.headers["content-disposition"] == f'attachment; filename="evidence-{case_id}.zip"'
    with zipfile.ZipFile(io.BytesIO(answer.content)) as bundle:
        name = next(n for n in bundle.namelist() if n.endswith("manifest.json"))
        manifest = json.loads(bundle.read(name))
        root = name.rsplit("/", 1)[0]
        for entry in manifest["files"]:
            path = entry["path"] if entry["path"].startswith(root + "/") else f"{root}/{entry['path']}"
            assert hashlib.sha256(bundle.read(path)).hexdigest() == entry["sha256"]
    assert (await get(client, harness, f"/api/cases/{case_id}/bundle", LEAD)).status_code == 404  # no visit files
    assert (await get(client, harness, f"/api/cases/{case_id}/bundle", ZED)).status_code == 404  # another team
    async with harness.db.read() as session:
        made = list(await session.scalars(select(AuditEntry).where(AuditEntry.action == "evidence.bundle")))
    assert [(e.object_id, e.actor_id) for e in made] == [(str(case_id), office.staff["boss"])]
    assert json.loads(made[0].details)["sha256"] == hashlib.sha256(answer.content).hexdigest()


async def test_health_needs_no_sign_in(client: httpx.AsyncClient) -> None:
    answer = await client.get("/healthz")
    assert answer.json() == {"ok": True} and answer.headers["referrer-policy"] == "no-referrer"
