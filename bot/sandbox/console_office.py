"""A small office for the supervisor's console: two teams, cases on the map, reports waiting with a photo and a
recording, a promise and a payment, and an open alarm with its location trail.

Used by the console's tests and by ``fieldbot console-demo``. Everything is written through the services
(assignments, visits, alarms), so the console reads what the bot itself would have written.
"""

from __future__ import annotations

import io
import math
import struct
import wave
from dataclasses import dataclass, field
from datetime import date, timedelta

from sqlalchemy import select

from bot.sandbox.harness import BotHarness
from bot.services import assignment, incidents
from bot.services import visits as visit_service
from bot.services.actor import StaffView
from bot.storage.models import Case, Evidence, Payment, Role, Staff

# Telegram user ids of the office's people
BOSS, LEAD, ADMIN, ZED, ANN, BOB, CAT, GONE = 5001, 5002, 5003, 5004, 5005, 5006, 5007, 5008
PEOPLE = (
    ("boss", BOSS, "王主管", Role.SUPERVISOR, "A"), ("lead", LEAD, "刘组长", Role.TEAM_LEAD, "A"),
    ("admin", ADMIN, "陈行政", Role.ADMIN, None), ("zed", ZED, "赵主管", Role.SUPERVISOR, "B"),
    ("ann", ANN, "张三", Role.COLLECTOR, "A"), ("bob", BOB, "李明", Role.COLLECTOR, "A"),
    ("cat", CAT, "周敏", Role.COLLECTOR, "B"), ("gone", GONE, "孙离职", Role.SUPERVISOR, "A"),
)
PEOPLE_AT = {"ann": (31.2335, 121.4760), "bob": (31.2230, 121.4450), "cat": (31.2100, 121.5200)}
CASES = (  # case number, debtor, collector, WGS-84 point
    ("ZS-1001", "李四", "ann", (31.2304, 121.4737)), ("ZS-1002", "王五", "ann", (31.2400, 121.4900)),
    ("ZS-1003", "赵六", "bob", (31.2200, 121.4400)), ("B-2001", "钱七", "cat", (31.2050, 121.5300)),
)


def photo_bytes(label: str = "front door") -> bytes:
    """A real JPEG (640×480, drawn here): what a collector's photo of the door looks like to the console."""
    from PIL import Image, ImageDraw

    image = Image.new("RGB", (640, 480), (70, 110, 160))
    draw = ImageDraw.Draw(image)
    draw.rectangle((220, 120, 420, 470), fill=(150, 90, 40), outline=(30, 30, 30), width=6)
    draw.ellipse((380, 290, 400, 310), fill=(230, 200, 60))
    draw.text((20, 20), label, fill=(255, 255, 255))
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=85)
    return out.getvalue()


def recording_bytes(seconds: float = 1.0) -> bytes:
    """A real WAV recording (a 440 Hz tone) that a browser's audio player can play."""
    rate = 8000
    out = io.BytesIO()
    with wave.open(out, "wb") as sound:
        sound.setnchannels(1)
        sound.setsampwidth(2)
        sound.setframerate(rate)
        sound.writeframes(b"".join(struct.pack("<h", int(8000 * math.sin(2 * math.pi * 440 * n / rate)))
                                   for n in range(int(rate * seconds))))
    return out.getvalue()


@dataclass
class ConsoleOffice:
    staff: dict[str, int] = field(default_factory=dict)  # name -> staff id
    cases: dict[str, int] = field(default_factory=dict)  # case number -> case id
    visits: dict[str, int] = field(default_factory=dict)  # case number -> its waiting visit report
    evidence: dict[str, int] = field(default_factory=dict)  # photo, recording -> evidence id
    incident: int = 0


async def _file(harness: BotHarness, collector_id: int, case_id: int, code: str, answers: dict[str, object],
                files: list[tuple[str, bytes, str, str]]) -> tuple[int, list[int]]:
    """A whole visit through the services: check-in, result, files stored in the media store, filed."""
    runtime = harness.runtime
    now = runtime.clock.now()
    async with harness.db.write() as session:
        me = StaffView.of((await session.scalars(select(Staff).where(Staff.id == collector_id))).one())
        case = await session.get(Case, case_id)
        assert case is not None and case.lat is not None and case.lon is not None
        visit = await visit_service.start(session, me, case_id, now=now)
        await visit_service.check_in(session, me, visit.id, lat=case.lat + 0.0004, lon=case.lon + 0.0003, sent_at=now,
                                     forwarded=False, now=now, radius_m=runtime.settings.checkin_radius_m)
        await visit_service.set_duration(session, me, visit.id, 30, now=now)
        await visit_service.set_code(session, me, visit.id, code, now=now)
        for name, value in answers.items():
            await visit_service.answer(session, me, visit.id, name, value, now=now)
        ids = []
        for n, (kind, data, suffix, mime) in enumerate(files):
            blob = await runtime.media.put(data, kind=kind, suffix=suffix)
            item = Evidence(visit_id=visit.id, kind=kind, status="stored", sha256=blob.sha256, path=blob.path,
                            size=blob.size, mime_type=mime, file_id=f"console-{visit.id}-{n}",
                            file_unique_id=f"console-u-{visit.id}-{n}", sender_id=me.id, sent_at=now, stored_at=now)
            session.add(item)
            await session.flush()
            ids.append(item.id)
        await visit_service.file_report(session, me, visit.id, now=now, calendar=runtime.calendar)
        return visit.id, ids


async def seed(harness: BotHarness) -> ConsoleOffice:
    """Write the office into the harness's database (its clock's today is the day shown)."""
    office = ConsoleOffice()
    runtime = harness.runtime
    for key, telegram_id, name, role, team in PEOPLE:
        boss = office.staff.get("boss") if role is Role.COLLECTOR and team == "A" else \
            office.staff.get("zed") if role is Role.COLLECTOR else None
        office.staff[key], _ = await harness.add_staff(name, role, team=team, supervisor_id=boss)
        async with harness.db.write() as session:
            person = await session.get(Staff, office.staff[key])
            assert person is not None
            person.telegram_user_id, person.active = telegram_id, key != "gone"
            if key in PEOPLE_AT:
                person.last_lat, person.last_lon = PEOPLE_AT[key]
                person.last_location_at = runtime.clock.now()
    now = runtime.clock.now()
    for case_no, debtor, holder, (lat, lon) in CASES:
        async with harness.db.write() as session:
            case = Case(bank="招商银行" if case_no.startswith("ZS") else "工商银行", case_no=case_no,
                        debtor_name=debtor, address="上海市黄浦区南京东路100号", phone="13800138000",
                        id_number_masked="310101********0011", amount_due_fen=1234560, overdue_days=45,
                        status="new", created_at=now, updated_at=now, lat=lat, lon=lon)
            session.add(case)
            await session.flush()
            office.cases[case_no] = case.id
            await assignment.assign_cases(session, [case.id], office.staff[holder], actor=None, reason="import",
                                          now=now, calendar=runtime.calendar)
    harness.clock.advance(minutes=40)
    promise_day = (runtime.calendar.working_date(runtime.clock.now()) + timedelta(days=3)).isoformat()
    visit_id, files = await _file(harness, office.staff["ann"], office.cases["ZS-1001"], "PTP",
                                  {"amount": "500", "promise_date": promise_day},
                                  [("photo", photo_bytes(), ".jpg", "image/jpeg"),
                                   ("audio", recording_bytes(), ".wav", "audio/wav")])
    office.visits["ZS-1001"], office.evidence["photo"], office.evidence["recording"] = visit_id, *files
    harness.clock.advance(minutes=20)
    office.visits["ZS-1003"], _ = await _file(
        harness, office.staff["bob"], office.cases["ZS-1003"], "NOBODY",
        {"revisit_date": (runtime.calendar.working_date(runtime.clock.now()) + timedelta(days=2)).isoformat()},
        [("audio", recording_bytes(0.5), ".wav", "audio/wav")])
    async with harness.db.write() as session:
        session.add(Payment(case_id=office.cases["ZS-1002"], amount_fen=30000,
                            paid_on=date.fromordinal(runtime.calendar.working_date(now).toordinal() - 1),
                            channel="bank", reference="R-1", row_key="console-office-payment-1", created_at=now))
    harness.clock.advance(minutes=10)
    async with harness.db.write() as session:
        incident, _ = await incidents.raise_alarm(session, office.staff["bob"], reason="sos",
                                                  now=runtime.clock.now(), policy=incidents.Policy.of(runtime.settings))
        office.incident = incident.id
    for step, (lat, lon) in enumerate(((31.2232, 121.4452), (31.2240, 121.4470), (31.2251, 121.4483))):
        harness.clock.advance(seconds=30)
        async with harness.db.write() as session:
            await incidents.add_location(session, office.staff["bob"], lat=lat, lon=lon, now=runtime.clock.now(),
                                         live=step > 0)
    return office
