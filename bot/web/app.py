"""The console's HTTP side: the page, its static files and the JSON API, on Starlette.

Every API call carries the Mini App sign-in in a header (``Authorization: tma <initData>``, never in the
URL), checked on every request (:mod:`bot.web.initdata`), mapped to the member of staff and through
:mod:`bot.services.console` to the permission policy. Answers:

* 401: no sign-in, or not Telegram's for this bot, or too old;
* 403: a person the console is not for (unknown, deactivated, a collector);
* 404: an object that does not exist or that the policy keeps from the viewer (another team's case);
* 409: a rule said no (a report already reviewed, a reason missing), with the message in the viewer's language;
* 429: the person's token bucket is empty (``Retry-After`` says when to try again).

Every answer carries the security headers (:data:`SECURITY_HEADERS`, :func:`content_security_policy`).
Nothing personal is put in a URL: objects are named by their ids, searches are sent in the body.
"""

from __future__ import annotations

import asyncio
import dataclasses
import importlib.util
import io
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bot.i18n import Translator, resolve_locale, translator
from bot.runtime import Runtime
from bot.services import audit, case_desk, console, reports, visits
from bot.services.actor import StaffView
from bot.services.case_desk import StatusChange
from bot.services.errors import DomainError, Forbidden, NotFound
from bot.services.visit_summary import summary_text
from bot.storage.media import MediaCorrupt
from bot.web.initdata import InitDataError, validate
from bot.web.messages import page_messages
from bot.web.ratelimit import TokenBuckets

log = logging.getLogger(__name__)

STATIC = Path(__file__).parent / "static"
AUTH_SCHEME = "tma"
MAX_BODY = 16 * 1024
THUMB_PX = 320
MEDIA_TYPES = {"photo": "image/jpeg", "voice": "audio/ogg", "audio": "audio/mpeg"}

SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=()",
    "Strict-Transport-Security": "max-age=31536000",
}


def tile_source(template: str | None) -> str:
    """The CSP source of the tile server (``https://*.host`` for a template with a ``{s}`` subdomain)."""
    if not template:
        return ""
    parts = urlsplit(template)
    labels = parts.netloc.split(".")
    if "{" in labels[0]:
        labels[0] = "*"
    return f"{parts.scheme}://{'.'.join(labels)}"


def content_security_policy(tiles: str | None) -> str:
    img = " ".join(filter(None, ["'self'", "data:", "blob:", tile_source(tiles)]))
    return "; ".join([
        "default-src 'self'",
        "script-src 'self' https://telegram.org",
        "style-src 'self'",
        f"img-src {img}",
        "media-src 'self' blob:",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors https://web.telegram.org https://*.telegram.org",
    ])


class SecurityHeaders:
    """Adds the security headers to every answer, the static files' and the errors' included."""

    def __init__(self, app: ASGIApp, csp: str) -> None:
        self.app = app
        self.headers = [(k.lower().encode(), v.encode()) for k, v in
                        {**SECURITY_HEADERS, "Content-Security-Policy": csp}.items()]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                present = {name.lower() for name, _ in message.get("headers", [])}
                message["headers"] = [*message.get("headers", []),
                                      *((k, v) for k, v in self.headers if k not in present)]
                if scope["path"].startswith("/api/") and b"cache-control" not in present:
                    message["headers"].append((b"cache-control", b"no-store"))
            await send(message)

        await self.app(scope, receive, with_headers)


# ---- JSON ------------------------------------------------------------------------------------------------


def _plain(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    raise TypeError(f"cannot send {type(value).__name__} as JSON")


class Json(JSONResponse):
    def render(self, content: Any) -> bytes:
        return json.dumps(content, ensure_ascii=False, default=_plain, separators=(",", ":")).encode()


def _error(status: int, t: Translator, key: str, **params: Any) -> Json:
    return Json({"error": key, "message": t(key, **params)}, status_code=status)


# ---- who is asking -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Caller:
    viewer: StaffView
    t: Translator


class RateLimited(Exception):
    def __init__(self, retry_after: float) -> None:
        self.retry_after = retry_after


class Console:
    """What the endpoints share: the bot's runtime, its token (the sign-in's key) and the rate limit."""

    def __init__(self, runtime: Runtime, bot_token: str) -> None:
        self.runtime = runtime
        self.bot_token = bot_token
        settings = runtime.settings
        self.buckets = TokenBuckets(settings.web_rate, settings.web_burst)

    def _limit(self, key: object) -> None:
        wait = self.buckets.take(key)
        if wait:
            raise RateLimited(wait)

    async def caller(self, request: Request) -> Caller:
        settings = self.runtime.settings
        scheme, _, init_data = request.headers.get("authorization", "").partition(" ")
        try:
            if scheme.lower() != AUTH_SCHEME:
                raise InitDataError("no tma authorization")
            user = validate(init_data.strip(), self.bot_token, now=self.runtime.clock.now(),
                            max_age_s=settings.web_auth_max_age_s)
        except InitDataError as exc:
            self._limit(("address", request.client.host if request.client else "-"))
            log.info("console sign-in refused: %s", exc)
            raise
        self._limit(("user", user.id))
        async with self.runtime.db.read() as session:
            viewer = await console.sign_in(session, user.id)
        t = translator(resolve_locale(viewer.locale, user.language_code, settings.default_locale))
        return Caller(viewer, t)


Handler = Callable[[Request, Console, Caller], Awaitable[Response]]


def api(handler: Handler, *, what: str) -> Callable[[Request], Awaitable[Response]]:
    """An endpoint: sign-in, rate limit, the handler; refusals as their HTTP answers (refusals audited)."""

    async def endpoint(request: Request) -> Response:
        app: Console = request.app.state.console
        office = translator(app.runtime.settings.default_locale)  # before sign-in: the office's language
        try:
            caller = await app.caller(request)
        except InitDataError:
            return _error(401, office, "web.error.sign_in")
        except RateLimited as limited:
            response = _error(429, office, "web.error.rate")
            response.headers["Retry-After"] = str(max(1, round(limited.retry_after)))
            return response
        except Forbidden as refused:
            await audit.record_refusal(app.runtime.db, actor_id=None, what="console.sign_in",
                                       subject=refused.subject, at=app.runtime.clock.now())
            return _error(403, office, "web.error.refused")
        try:
            return await handler(request, app, caller)
        except Forbidden as refused:  # someone else's object: as if it did not exist
            await audit.record_refusal(app.runtime.db, actor_id=caller.viewer.id, what=what,
                                       subject=refused.subject, at=app.runtime.clock.now())
            return _error(404, caller.t, "web.error.not_found")
        except NotFound:
            return _error(404, caller.t, "web.error.not_found")
        except DomainError as error:
            return _error(409, caller.t, error.key, **error.params)
        except BadRequest:
            return _error(400, caller.t, "error.generic")

    return endpoint


class BadRequest(Exception):
    pass


async def _body(request: Request) -> dict[str, Any]:
    raw = await request.body()
    if len(raw) > MAX_BODY:
        raise BadRequest()
    try:
        data = json.loads(raw or b"{}")
    except ValueError as exc:
        raise BadRequest() from exc
    if not isinstance(data, dict):
        raise BadRequest()
    return data


def _int(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise BadRequest()
    try:
        return int(value)
    except ValueError as exc:
        raise BadRequest() from exc


def _id(request: Request, name: str = "id") -> int:
    return _int(request.path_params[name])


# ---- formatting --------------------------------------------------------------------------------------------


def _when(t: Translator, moment: datetime | None, tz: Any) -> str | None:
    return t.datetime(moment, tz) if moment is not None else None


def _money(t: Translator, fen: int | None) -> str | None:
    return t.money(Decimal(fen) / 100) if fen is not None else None


# ---- endpoints ---------------------------------------------------------------------------------------------


async def me(request: Request, app: Console, caller: Caller) -> Response:
    viewer, t = caller.viewer, caller.t
    settings = app.runtime.settings
    return Json({
        "id": viewer.id, "name": viewer.name, "role": viewer.role.value, "role_label": t(f"role.{viewer.role.value}"),
        "team": viewer.team, "locale": t.locale, "messages": page_messages(t),
        "map": {"tiles": settings.web_tiles, "datum": settings.web_tiles_crs},
    })


async def case_filters(request: Request, app: Console, caller: Caller) -> Response:
    t = caller.t
    async with app.runtime.db.read() as session:
        found = await console.filters(session, caller.viewer)
    return Json({"statuses": [{"value": s, "label": t(f"desk.status.{s}")} for s in found.statuses],
                 "collectors": [{"id": i, "name": n} for i, n in found.collectors], "banks": found.banks})


async def case_search(request: Request, app: Console, caller: Caller) -> Response:
    body = await _body(request)
    runtime, t = app.runtime, caller.t
    collector = body.get("collector_id")
    wanted = console.CaseFilter(
        text=str(body.get("text") or ""), status=str(body["status"]) if body.get("status") else None,
        collector_id=_int(collector) if collector not in (None, "") else None,
        bank=str(body["bank"]) if body.get("bank") else None, overdue=bool(body.get("overdue")),
        promise_due=bool(body.get("promise_due")))
    offset = _int(body.get("offset") or 0)
    limit = _int(body.get("limit") or 20)
    async with runtime.db.read() as session:
        rows, total = await console.find_cases(session, caller.viewer, wanted, now=runtime.clock.now(),
                                               calendar=runtime.calendar, offset=offset, limit=limit)
    return Json({"total": total, "offset": offset, "limit": limit, "items": [{
        "id": r.id, "case_no": r.case_no, "bank": r.bank, "debtor": r.debtor, "amount": _money(t, r.amount_due_fen),
        "status": r.status, "status_label": t(f"desk.status.{r.status}"), "collector": r.collector,
        "due": _when(t, r.visit_due_at, runtime.tz), "overdue": r.overdue,
        "promise_due": t.date(r.promise_due_on) if r.promise_due_on else None} for r in rows]})


def _evidence_json(t: Translator, item: console.EvidenceItem, tz: Any) -> dict[str, Any]:
    return {"id": item.id, "kind": item.kind, "label": t(f"evidence.kind.{item.kind}"),
            "stored": item.status == "stored", "at": _when(t, item.sent_at, tz), "sha256": item.sha256,
            "size": item.size}


async def case_detail(request: Request, app: Console, caller: Caller) -> Response:
    runtime, t, tz = app.runtime, caller.t, app.runtime.tz
    async with runtime.db.read() as session:
        page = await console.case_page(session, caller.viewer, _id(request), runtime.calendar)
    card, case = page.card, page.card.case
    return Json({
        "id": case.id, "case_no": case.case_no, "bank": case.bank, "debtor": page.debtor, "phone": page.phone,
        "id_number": case.id_number_masked, "address": case.address, "amount": t.money(case.amount_due),
        "overdue_days": case.overdue_days, "status": case.status, "status_label": t(f"desk.status.{case.status}"),
        "team": case.team, "assignee": card.assignee.name if card.assignee else None,
        "visit_due": _when(t, case.visit_due_at, tz), "status_reason": case.status_reason,
        "status_changed_by": card.changed_by,
        "timeline": [entry.render(t, tz) for entry in card.timeline],
        "visits": [{"id": v.id, "collector": v.collector, "status": v.status,
                    "status_label": t(f"desk.visit_status.{v.status}"), "code": v.code,
                    "code_label": t(f"code.{v.code}") if v.code else None, "started": _when(t, v.started_at, tz),
                    "checkin": _when(t, v.checkin_at, tz), "distance_m": v.checkin_distance_m,
                    "flagged": v.checkin_flagged, "filed": _when(t, v.filed_at, tz), "comment": v.review_comment,
                    "evidence": [_evidence_json(t, e, tz) for e in v.evidence]} for v in page.visits],
        "promises": [{"amount": _money(t, p.amount_fen), "due": t.date(p.due_on), "status": p.status,
                      "status_label": t(f"promise.{p.status}"), "paid": _money(t, p.paid_fen)}
                     for p in page.promises],
        "payments": [{"amount": _money(t, p.amount_fen), "paid_on": t.date(p.paid_on), "channel": p.channel}
                     for p in page.payments],
        "assignments": [{"collector": a.collector, "by": a.by, "at": _when(t, a.at, tz),
                         "ended": _when(t, a.ended_at, tz), "reason": a.reason} for a in page.assignments],
        "actions": {
            "reassign": [{"id": i, "name": n} for i, n in page.collectors],
            "hold": card.may_change_status and case.status in case_desk.ALLOWED_FROM[StatusChange.HOLD],
            "close": card.may_change_status and case.status in case_desk.ALLOWED_FROM[StatusChange.CLOSE],
            "reopen": card.may_change_status and case.status in case_desk.ALLOWED_FROM[StatusChange.REOPEN],
            "bundle": bundles_available() and page.may_review,
        },
    })


async def case_reassign(request: Request, app: Console, caller: Caller) -> Response:
    body = await _body(request)
    runtime = app.runtime
    async with runtime.db.write() as session:
        moved = await case_desk.reassign(session, caller.viewer, [_id(request)], _int(body.get("collector_id")),
                                         reason=str(body.get("reason") or ""), now=runtime.clock.now(),
                                         calendar=runtime.calendar)
    return Json({"moved": [c.id for c in moved]})


async def case_status(request: Request, app: Console, caller: Caller) -> Response:
    body = await _body(request)
    runtime = app.runtime
    try:
        change = StatusChange(str(body.get("change")))
    except ValueError as exc:
        raise BadRequest() from exc
    async with runtime.db.write() as session:
        case = await case_desk.change_status(session, caller.viewer, _id(request), change,
                                             reason=str(body.get("reason") or ""), now=runtime.clock.now(),
                                             calendar=runtime.calendar)
        status = case.status
    return Json({"status": status, "status_label": caller.t(f"desk.status.{status}")})


def _thumbnail(data: bytes) -> bytes:
    from PIL import Image  # only when a thumbnail is asked for

    with Image.open(io.BytesIO(data)) as image:
        image.thumbnail((THUMB_PX, THUMB_PX))
        out = io.BytesIO()
        image.convert("RGB").save(out, format="JPEG", quality=80)
        return out.getvalue()


async def evidence_file(request: Request, app: Console, caller: Caller) -> Response:
    runtime = app.runtime
    async with runtime.db.read() as session:
        item = await console.evidence_file(session, caller.viewer, _id(request))
        path, kind, mime = item.path, item.kind, item.mime_type
    assert path is not None
    try:
        data = await runtime.media.read(path)
    except (OSError, MediaCorrupt) as exc:
        log.error("evidence %s is missing from the media store: %s", path, exc)
        raise NotFound() from exc
    media_type = mime or MEDIA_TYPES.get(kind, "application/octet-stream")
    if kind == "photo" and request.query_params.get("size") == "thumb":
        try:
            data, media_type = await asyncio.to_thread(_thumbnail, data), "image/jpeg"
        except Exception:  # not an image PIL reads: the photo as it is
            log.info("no thumbnail for %s", path)
    return Response(data, media_type=media_type, headers={"Cache-Control": "private, no-store",
                                                          "Content-Disposition": "inline"})


async def review_list(request: Request, app: Console, caller: Caller) -> Response:
    runtime, t = app.runtime, caller.t
    async with runtime.db.read() as session:
        queue = await console.review_queue(session, caller.viewer, now=runtime.clock.now(), calendar=runtime.calendar)
    return Json({"may_review": queue.may_review, "items": [{
        "visit_id": w.visit_id, "case_no": w.case_no, "collector": w.name, "filed": _when(t, w.filed_at, runtime.tz),
        "late": w.late} for w in queue.waiting]})


async def review_detail(request: Request, app: Console, caller: Caller) -> Response:
    runtime, t = app.runtime, caller.t
    async with runtime.db.read() as session:
        item = await console.review_item(session, caller.viewer, _id(request))
        text = summary_text(t, item.case, item.visit, item.evidence, tz=runtime.tz)
        files = [_evidence_json(t, console.EvidenceItem(e.id, e.kind, e.status, e.sent_at, e.sha256, e.size),
                                runtime.tz) for e in item.evidence]
        case_id = item.case.id
    return Json({"visit_id": item.visit.id, "case_id": case_id, "summary": text, "evidence": files})


async def review_decide(request: Request, app: Console, caller: Caller) -> Response:
    body = await _body(request)
    runtime = app.runtime
    decision = request.path_params["decision"]
    if decision not in ("approve", "return"):
        raise BadRequest()
    approve = decision == "approve"
    comment = " ".join(str(body.get("comment") or "").split())[:1000] or None
    if not approve and comment is None:
        raise DomainError("review.ask_comment")
    async with runtime.db.write() as session:
        visit = await visits.review(session, caller.viewer, _id(request), approve=approve, comment=comment,
                                    now=runtime.clock.now())
        status = visit.status
    return Json({"visit_id": _id(request), "status": status})


def _point(p: console.MapPoint, t: Translator, tz: Any) -> dict[str, Any]:
    return {"lat": round(p.lat, 6), "lon": round(p.lon, 6), "label": p.label, "kind": p.kind, "ref": p.ref,
            "at": _when(t, p.at, tz)}


async def team_map(request: Request, app: Console, caller: Caller) -> Response:
    runtime, t, tz = app.runtime, caller.t, app.runtime.tz
    async with runtime.db.read() as session:
        found = await console.team_map(session, caller.viewer, now=runtime.clock.now(), calendar=runtime.calendar,
                                       datum=runtime.settings.web_tiles_crs if runtime.settings.web_tiles else "wgs84")
    return Json({
        "team": found.team, "datum": found.datum,
        "cases": [_point(p, t, tz) for p in found.cases], "visits": [_point(p, t, tz) for p in found.visits],
        "collectors": [_point(p, t, tz) for p in found.collectors],
        "incidents": [{"id": i.id, "collector": i.collector, "reason": t(f"incident.reason.{i.reason}"),
                       "status": i.status, "raised": _when(t, i.raised_at, tz),
                       "trail": [_point(p, t, tz) for p in i.trail]} for i in found.incidents],
    })


def _alarm(row: console.AlarmRow, t: Translator, tz: Any) -> dict[str, Any]:
    i = row.incident
    return {"id": i.id, "collector": row.collector, "owner": row.owner, "reason": t(f"incident.reason.{i.reason}"),
            "status": i.status, "raised": _when(t, i.raised_at, tz), "acknowledged": _when(t, i.acknowledged_at, tz),
            "resolved": _when(t, i.resolved_at, tz), "duress": i.duress,
            "resolution": t(f"resolution.{i.resolution}") if i.resolution else None}


async def alarm_list(request: Request, app: Console, caller: Caller) -> Response:
    runtime, t, tz = app.runtime, caller.t, app.runtime.tz
    async with runtime.db.read() as session:
        board = await console.alarm_board(session, caller.viewer, now=runtime.clock.now(), calendar=runtime.calendar)
    f = board.figures
    return Json({
        "open": [_alarm(r, t, tz) for r in board.open], "recent": [_alarm(r, t, tz) for r in board.recent],
        "figures": {"month": f.month.isoformat()[:7], "count": f.count, "delivery": f.delivery,
                    "acknowledgement": f.acknowledgement,
                    "targets": [{"share": x.share, "within_s": x.within_s, "measured_s": x.percentile_s, "met": x.met}
                                for x in f.targets]},
    })


async def alarm_detail(request: Request, app: Console, caller: Caller) -> Response:
    runtime, t, tz = app.runtime, caller.t, app.runtime.tz
    async with runtime.db.read() as session:
        detail = await console.alarm_detail(session, caller.viewer, _id(request))
    return Json({**_alarm(detail.row, t, tz), "events": [{
        "at": _when(t, e.at, tz), "kind": e.kind, "who": detail.names.get(e.staff_id) if e.staff_id else None,
        "lat": e.details.get("lat"), "lon": e.details.get("lon")} for e in detail.events]})


def _kind(request: Request) -> str:
    kind = request.query_params.get("kind", reports.WEEKLY)
    if kind not in (reports.WEEKLY, reports.MONTHLY):
        raise BadRequest()
    return kind


async def report_figures(request: Request, app: Console, caller: Caller) -> Response:
    runtime, t = app.runtime, caller.t
    async with runtime.db.read() as session:
        built = await console.report(session, caller.viewer, _kind(request), now=runtime.clock.now(),
                                     calendar=runtime.calendar)
    total = built.total
    return Json({
        "kind": built.period.kind, "start": t.date(built.period.start), "end": t.date(built.period.end),
        "team": built.team, "text": reports.report_text(t, built),
        "rows": [{"name": r.name, "team": r.team, "visits": r.visits, "promises_made": r.promises_made,
                  "promises_kept": r.promises_kept, "promises_broken": r.promises_broken,
                  "recovered_fen": r.recovered_fen, "recovered": _money(t, r.recovered_fen), "overdue": r.overdue,
                  "by_code": {t(f"code.{c}") if c != "-" else "-": n for c, n in r.by_code.items()}}
                 for r in built.rows],
        "total": {"visits": total.visits, "promises_made": total.promises_made,
                  "recovered": _money(t, total.recovered_fen)},
    })


async def report_xlsx(request: Request, app: Console, caller: Caller) -> Response:
    runtime, t = app.runtime, caller.t
    kind = _kind(request)
    async with runtime.db.read() as session:
        built = await console.report(session, caller.viewer, kind, now=runtime.clock.now(), calendar=runtime.calendar)
    data = await asyncio.to_thread(reports.xlsx_bytes, t, built, runtime.tz)
    stem = f"{kind}-{built.team or 'all'}-{built.period.start:%Y%m%d}"
    return Response(data, media_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                    headers={"Content-Disposition": f'attachment; filename="{stem}.xlsx"'})


def bundles_available() -> bool:
    """Whether this installation has the evidence bundle service (``bot/services/evidence_bundle.py``)."""
    return importlib.util.find_spec("bot.services.evidence_bundle") is not None


async def case_bundle(request: Request, app: Console, caller: Caller) -> Response:
    """The case's evidence bundle (ZIP), made by the bundle service, which asks the policy and audits it."""
    if not bundles_available():
        raise NotFound()
    from bot.services import evidence_bundle

    runtime, case_id = app.runtime, _id(request)
    async with runtime.db.write() as session:
        data = await evidence_bundle.build_bundle(session, runtime.media, caller.viewer, case_id,
                                                  now=runtime.clock.now(), lang=caller.t.locale,
                                                  calendar=runtime.calendar)
    return Response(data, media_type="application/zip",
                    headers={"Content-Disposition": f'attachment; filename="evidence-{case_id}.zip"'})


async def index(request: Request) -> Response:
    return FileResponse(STATIC / "index.html", media_type="text/html; charset=utf-8",
                        headers={"Cache-Control": "no-cache"})


async def healthz(request: Request) -> Response:
    return Json({"ok": True})


def create_app(runtime: Runtime, bot_token: str) -> ASGIApp:
    """The console as an ASGI app, for uvicorn (``bot/web/server.py``) or a test client."""
    routes = [
        Route("/", index),
        Route("/healthz", healthz),
        Route("/api/me", api(me, what="console.me")),
        Route("/api/cases/filters", api(case_filters, what="console.cases")),
        Route("/api/cases/search", api(case_search, what="console.cases"), methods=["POST"]),
        Route("/api/cases/{id:int}", api(case_detail, what="console.case")),
        Route("/api/cases/{id:int}/reassign", api(case_reassign, what="console.reassign"), methods=["POST"]),
        Route("/api/cases/{id:int}/status", api(case_status, what="console.status"), methods=["POST"]),
        Route("/api/cases/{id:int}/bundle", api(case_bundle, what="console.bundle")),
        Route("/api/evidence/{id:int}", api(evidence_file, what="console.evidence")),
        Route("/api/reviews", api(review_list, what="console.reviews")),
        Route("/api/reviews/{id:int}", api(review_detail, what="console.review")),
        Route("/api/reviews/{id:int}/{decision:str}", api(review_decide, what="console.review"), methods=["POST"]),
        Route("/api/map", api(team_map, what="console.map")),
        Route("/api/incidents", api(alarm_list, what="console.incidents")),
        Route("/api/incidents/{id:int}", api(alarm_detail, what="console.incident")),
        Route("/api/reports", api(report_figures, what="console.reports")),
        Route("/api/reports/xlsx", api(report_xlsx, what="console.reports")),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ]
    app = Starlette(routes=routes)
    app.state.console = Console(runtime, bot_token)
    return SecurityHeaders(app, content_security_policy(runtime.settings.web_tiles))
