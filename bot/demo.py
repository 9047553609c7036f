"""``fieldbot demo``: the whole product in one run, without a token.

The real application runs in-process against the Bot API stand-in, on a throw-away database with a
settable clock. Each flow adds a scene to :data:`SCENES`; the transcript shows what every person
types and what the bot answers them, buttons included.
"""

from __future__ import annotations

import tempfile
from collections.abc import Awaitable, Callable, Sequence
from datetime import date, datetime
from pathlib import Path
from typing import Any, TextIO
from zoneinfo import ZoneInfo

from bot import buttons as b
from bot.buttons import Button, parse
from bot.clock import ManualClock
from bot.i18n import translator
from bot.sandbox.botapi import ApiCall
from bot.sandbox.harness import BotHarness, sandbox_settings
from bot.sandbox.updates import FakeUser
from bot.services import audit, backup, banks, retention
from bot.services.cases import current_assignee
from bot.storage.models import Role

SHOWN_METHODS = {"sendMessage", "editMessageText", "sendPhoto", "sendDocument", "answerCallbackQuery",
                 "sendLocation"}


class Demo:
    """A transcript writer around a :class:`BotHarness`."""

    def __init__(self, harness: BotHarness, out: TextIO, lang: str) -> None:
        self.harness = harness
        self.out = out
        self.lang = lang
        self.t = translator(lang)
        self.people: dict[int, str] = {}
        self.staff_ids: dict[str, int] = {}
        self.language_code = "zh-hans" if lang == "zh_CN" else "en"

    def person(self, user_id: int, name: str) -> FakeUser:
        self.people[user_id] = name
        return FakeUser(user_id, name, language_code=self.language_code)

    def title(self, text: str) -> None:
        self.out.write(f"\n{'═' * 60}\n  {text}\n{'═' * 60}\n")

    def note(self, text: str) -> None:
        self.out.write(f"  ┊ {text}\n")

    def show(self, calls: Sequence[ApiCall]) -> None:
        for call in calls:
            if call.method not in SHOWN_METHODS or call.failed:
                continue
            chat = call.params.get("chat_id")
            who = self.people.get(chat, str(chat)) if isinstance(chat, int) else ""
            text = call.params.get("text") or call.params.get("caption") or ""
            if call.method == "answerCallbackQuery":
                if text:
                    self.out.write(f"  🤖 (popup) {text}\n")
                continue
            label = {"sendDocument": "📎 ", "sendPhoto": "🖼 ", "editMessageText": "✏️ "}.get(call.method, "")
            body = str(text).replace("\n", "\n      ")
            if call.method == "sendLocation":
                live = " (live)" if call.params.get("live_period") else ""
                body = f"📍 ({call.params['latitude']}, {call.params['longitude']}){live}"
            self.out.write(f"  🤖 → {who}: {label}{body}\n")
            self._buttons(call.params.get("reply_markup"))

    def _buttons(self, markup: Any) -> None:
        if not isinstance(markup, dict):
            return
        rows = markup.get("inline_keyboard") or markup.get("keyboard") or []
        for row in rows:
            self.out.write("      " + " ".join(f"[{b.get('text')}]" for b in row) + "\n")

    async def send(self, user: FakeUser, update: dict[str, Any], shown: str) -> list[ApiCall]:
        self.out.write(f"  👤 {self.people.get(user.id, user.first_name)}: {shown}\n")
        self.harness.clock.advance(minutes=1)
        calls = await self.harness.send(update)
        self.show(calls)
        return calls

    async def say(self, user: FakeUser, text: str) -> list[ApiCall]:
        return await self.send(user, self.harness.updates.text(user, text), text)

    async def command(self, user: FakeUser, command: str, args: str | None = None) -> list[ApiCall]:
        shown = f"{command} {args}" if args else command
        return await self.send(user, self.harness.updates.command(user, command, args), shown)

    async def press(self, user: FakeUser, data: str, label: str) -> list[ApiCall]:
        return await self.send(user, self.harness.updates.button(user, data), f"(taps [{label}])")


BRANCH = {"zh_CN": "上海分公司", "en": "Shanghai"}


async def scene_onboarding(demo: Demo) -> None:
    t = demo.t
    demo.title(t("demo.scene.onboarding"))
    boss_user = demo.person(9001, "王主管" if demo.lang == "zh_CN" else "Wang (supervisor)")
    boss_id, boss_code = await demo.harness.add_staff(demo.people[9001], Role.SUPERVISOR, team="A",
                                                      branch=BRANCH[demo.lang])
    demo.staff_ids["supervisor"] = boss_id
    demo.note(f"$ fieldbot staff add --name {demo.people[9001]} --role supervisor --team A "
              f"--branch {BRANCH[demo.lang]}")
    demo.note(f"  invite link: https://t.me/fieldbot_demo_bot?start={boss_code[:6]}…")
    await demo.command(boss_user, "/start", boss_code)

    collector = demo.person(9002, "张三" if demo.lang == "zh_CN" else "Zhang San")
    staff_id, code = await demo.harness.add_staff(demo.people[9002], Role.COLLECTOR, team="A", supervisor_id=boss_id)
    demo.staff_ids["collector"] = staff_id
    demo.note(f"$ fieldbot staff add --name {demo.people[9002]} --role collector --team A --supervisor {boss_id}")
    await demo.command(collector, "/start", code)
    await demo.command(demo.person(9003, "Eve"), "/start", code)
    await demo.say(demo.person(9004, "Stranger"), "hi")
    await demo.command(collector, "/lang")


DEMO_FILE = (
    "案件编号,委托方,客户姓名,证件号码,手机号码,家庭地址,欠款金额,逾期天数,委托日期,纬度,经度\n"
    "ZS-0001,招商银行,李四,310115198001010011,13800138000,上海市浦东新区世纪大道100号,\"12,345.60\",45,2026/11/2,"
    "31.2347,121.5063\n"
    "ZS-0002,招商银行,王五,310104198502020022,13900139000,上海市徐汇区漕溪北路88号,¥8000,90,2026-11-02,31.1880,121.4370\n"
    "ZS-0003,招商银行,赵六,310112199003030033,13700137000,上海市闵行区莘庄镇莘建路1号,3500元,30,2026年11月2日,,\n"
    "ZS-0004,招商银行,钱七,310110197704040044,12345,上海市杨浦区五角场,6000,20,2026-11-02,,\n"
)


async def scene_intake(demo: Demo) -> None:
    t = demo.t
    demo.title(t("demo.scene.intake"))
    admin = demo.person(9005, "刘行政" if demo.lang == "zh_CN" else "Liu (admin)")
    demo.staff_ids["admin"] = await demo.harness.onboard(admin, demo.people[9005], Role.ADMIN, team=None)
    demo.harness.app.bot_data["runtime"].settings.import_batch_size = 2
    update = demo.harness.document_update(admin, DEMO_FILE.encode("gb18030"), "招商银行_20261102.csv",
                                          caption="招商银行 组:A")
    await demo.send(admin, update, "📎 招商银行_20261102.csv (GBK CSV, 4 rows) «招商银行 组:A»")

    boss = demo.person(9001, demo.people[9001])
    calls = await demo.command(boss, "/assign")
    first_case = _button(calls[-1:], b.AssignPickCase)["callback_data"]
    calls = await demo.press(boss, first_case, "ZS-0001")
    collector_button = _button(calls[-1:], b.AssignTo)
    await demo.press(boss, collector_button["callback_data"], collector_button["text"])
    demo.note(t("demo.outbox"))
    before = len(demo.harness.api.calls)
    await demo.harness.deliver_outbox()
    demo.show(demo.harness.api.calls[before:])


def _button(calls: Sequence[ApiCall], kind: type[Button], target: int | None = None) -> dict[str, Any]:
    """The first inline button (text and data) of ``kind`` (about ``target``) in the last keyboard shown."""
    for call in reversed(calls):
        markup = call.params.get("reply_markup")
        if isinstance(markup, dict) and "inline_keyboard" in markup:
            for row in markup["inline_keyboard"]:
                for button in row:
                    pressed = parse(str(button.get("callback_data", "")))
                    if isinstance(pressed, kind) and target in (None, pressed.target_id):
                        return dict(button)
    raise LookupError(kind.__name__)


async def scene_visit(demo: Demo) -> None:
    t, h = demo.t, demo.harness
    demo.title(t("demo.scene.visit"))
    collector = demo.person(9002, demo.people[9002])
    boss = demo.person(9001, demo.people[9001])
    calls = await demo.command(collector, "/visits")
    card = _button(calls, b.CaseCard)
    calls = await demo.press(collector, card["callback_data"], card["text"])
    start = _button(calls, b.CheckIn)
    await demo.press(collector, start["callback_data"], start["text"])
    await demo.send(collector, h.updates.location(collector, 31.2349, 121.5061), "📍 (31.2349, 121.5061)")
    await demo.press(collector, b.VisitDuration(minutes=b.Word("60")).pack(), t("visit.minutes", minutes=60))
    await demo.press(collector, b.ResultCode(code=b.Code("PTP")).pack(), t("code.PTP"))
    await demo.say(collector, "1,200元")
    await demo.say(collector, "abc" if demo.lang == "en" else "下周")
    await demo.say(collector, "12-3")
    await demo.send(collector, h.photo_update(collector, b"\xff\xd8 demo door photo"), "🖼 (photo)")
    await demo.send(collector, h.voice_update(collector, b"OggS demo recording"), "🎙 (voice note, 0:42)")
    await demo.press(collector, b.EvidenceDone().pack(), t("visit.evidence_done"))
    await demo.press(collector, b.FileReport().pack(), t("visit.file"))
    demo.note(t("demo.outbox"))
    before = len(h.api.calls)
    await h.deliver_outbox()
    demo.show(h.api.calls[before:])
    approve = _button(h.api.calls[before:], b.ReviewApprove)
    await demo.press(boss, approve["callback_data"], approve["text"])
    before = len(h.api.calls)
    await h.deliver_outbox()
    demo.show(h.api.calls[before:])


async def _tick(demo: Demo, moment: str) -> None:
    """Move the clock and run one tick of the sweeps, showing what they sent."""
    h = demo.harness
    h.clock.set(datetime.fromisoformat(moment).replace(tzinfo=ZoneInfo("Asia/Shanghai")))
    demo.note(demo.t("demo.clock", time=moment.replace("T", " ")))
    before = len(h.api.calls)
    await h.tick()
    demo.show(h.api.calls[before:])


async def scene_deadlines(demo: Demo) -> None:
    from bot.services import assignment

    t, h = demo.t, demo.harness
    demo.title(t("demo.scene.deadlines"))
    collector = demo.person(9002, demo.people[9002])
    boss = demo.person(9001, demo.people[9001])
    async with h.db.write() as session:
        case = await assignment.find_case(session, "ZS-0002")
        await assignment.assign_cases(session, [case.id], demo.staff_ids["collector"], actor=None, reason="demo",
                                      now=h.clock.now(), calendar=h.runtime.calendar)
        case_id = case.id
    demo.note(f"$ fieldbot assign ZS-0002 --to {demo.people[9002]}")
    await _tick(demo, "2026-11-04T09:00")
    calls = await demo.command(collector, "/visits")
    card = _button(calls, b.CaseCard, case_id)
    calls = await demo.press(collector, card["callback_data"], card["text"])
    await demo.press(collector, b.ExtensionAsk(case_id=case_id).pack(), _button(calls, b.ExtensionAsk)["text"])
    await demo.say(collector, "客户本周出差，周五回来" if demo.lang == "zh_CN" else "The debtor is away until Friday")
    await demo.say(collector, "11-6")
    before = len(h.api.calls)
    await h.deliver_outbox()
    demo.show(h.api.calls[before:])
    approve = _button(h.api.calls[before:], b.ExtensionApprove)
    await demo.press(boss, approve["callback_data"], approve["text"])
    await _tick(demo, "2026-11-04T09:30")
    await _tick(demo, "2026-11-06T09:00")
    await _tick(demo, "2026-11-09T09:00")
    await _tick(demo, "2026-12-04T09:00")


async def scene_emergency(demo: Demo) -> None:
    t, h = demo.t, demo.harness
    demo.title(t("demo.scene.emergency"))
    collector = demo.person(9002, demo.people[9002])
    boss = demo.person(9001, demo.people[9001])
    lead = demo.person(9006, "李组长" if demo.lang == "zh_CN" else "Li (team lead)")
    await h.onboard(lead, demo.people[9006], Role.TEAM_LEAD, team="A")
    await demo.command(collector, "/pin")
    await demo.say(collector, "1234")
    await demo.say(collector, "9999")
    await demo.command(collector, "/sos")
    await demo.send(collector, h.updates.location(collector, 31.1880, 121.4370, live_period=900), "📍 (live)")
    await _tick(demo, "2026-12-04T09:08")
    alert = _button(h.api.sent("sendMessage", lead.id), b.AlarmAcknowledge)
    await demo.press(lead, alert["callback_data"], alert["text"])
    await _tick(demo, "2026-12-04T09:20")
    incident_id = b.AlarmAcknowledge.unpack(alert["callback_data"]).incident_id
    await demo.press(lead, b.AlarmResolve(incident_id=incident_id).pack(), t("incident.resolve"))
    resolution = b.AlarmResolution(incident_id=incident_id, resolution=b.Word("resolved_safely"))
    await demo.press(lead, resolution.pack(), t("resolution.resolved_safely"))
    await demo.say(lead, "已电话确认张三安全离开" if demo.lang == "zh_CN" else "Called Zhang San: he left safely")
    await _tick(demo, "2026-12-04T09:30")
    del boss


async def scene_handover(demo: Demo) -> None:
    t, h = demo.t, demo.harness
    demo.title(t("demo.scene.handover"))
    collector = demo.person(9002, demo.people[9002])
    boss = demo.person(9001, demo.people[9001])
    lead = demo.person(9006, demo.people[9006])
    successor = demo.person(9007, "赵六" if demo.lang == "zh_CN" else "Zhao Liu")
    await h.onboard(successor, demo.people[9007], Role.COLLECTOR, team="A", supervisor_id=demo.staff_ids["supervisor"])
    await demo.command(boss, "/handover")
    await demo.press(boss, b.HandoverFrom(staff_id=demo.staff_ids["collector"]).pack(), demo.people[9002])
    calls = await demo.press(boss, _button(h.api.calls[-3:], b.HandoverSuccessor)["callback_data"], demo.people[9007])
    await demo.press(boss, b.HandoverGo().pack(), _button(calls, b.HandoverGo)["text"])
    before = len(h.api.calls)
    await h.deliver_outbox()
    demo.show(h.api.calls[before:])
    calls = await demo.press(collector, b.HandoverChecklist().pack(), t("handover.open_list"))
    while True:
        try:
            item = _button(calls, b.HandoverItemDone)
        except LookupError:
            break
        calls = await demo.press(collector, item["callback_data"], item["text"])
    before = len(h.api.calls)
    await h.deliver_outbox()
    demo.show(h.api.calls[before:])
    review = _button(h.api.calls[before:], b.HandoverReview)
    calls = await demo.press(lead, review["callback_data"], review["text"])
    await demo.press(lead, _button(calls, b.HandoverLeadOk)["callback_data"], t("handover.confirm_all"))
    before = len(h.api.calls)
    await h.deliver_outbox()
    demo.show(h.api.calls[before:])
    receive = _button(h.api.calls[before:], b.HandoverReceive)
    await demo.press(successor, receive["callback_data"], receive["text"])
    before = len(h.api.calls)
    await h.deliver_outbox()
    demo.show(h.api.calls[before:])
    await demo.command(collector, "/visits")


REPAYMENTS = ("案件编号,委托方,还款金额,还款日期,还款渠道,流水号\n"
              "ZS-0001,招商银行,12345.60,2026-12-04,银行转账,CMB-88001\n")


async def scene_office(demo: Demo) -> None:
    """The office's day: the team at a glance, a case found by the debtor's name and reassigned with a reason,
    the bank's repayment file settling it, and its card's timeline."""
    t, h = demo.t, demo.harness
    demo.title(t("demo.scene.office"))
    boss = demo.person(9001, demo.people[9001])
    admin = demo.person(9005, demo.people[9005])
    newcomer = demo.person(9008, "钱七" if demo.lang == "zh_CN" else "Qian Qi")
    await h.onboard(newcomer, demo.people[9008], Role.COLLECTOR, team="A", supervisor_id=demo.staff_ids["supervisor"])
    await demo.command(boss, "/team")
    calls = await demo.command(boss, "/case", "李四")
    reassign = _button(calls, b.DeskReassign)
    calls = await demo.press(boss, reassign["callback_data"], reassign["text"])
    target = _button(calls, b.DeskReassignTo)
    await demo.press(boss, target["callback_data"], target["text"])
    await demo.say(boss, "赵六本周休假" if demo.lang == "zh_CN" else "Zhao Liu is on leave this week")
    before = len(h.api.calls)
    await h.deliver_outbox()
    demo.show(h.api.calls[before:])
    update = h.document_update(admin, REPAYMENTS.encode("utf-8-sig"), "招商银行_还款_20261204.csv")
    await demo.send(admin, update, "📎 招商银行_还款_20261204.csv (1 row)")
    await demo.command(boss, "/case", "ZS-0001")


async def scene_procedure(demo: Demo) -> None:
    """The rest of the procedure: the bank's agreement and emergency contact, a registered letter refused
    (its term counts from sending + 3 days), a special procedure applied for, approved and arranged."""
    t, h = demo.t, demo.harness
    demo.title(t("demo.scene.procedure"))
    boss, admin = demo.person(9001, demo.people[9001]), demo.person(9005, demo.people[9005])
    zh = demo.lang == "zh_CN"
    routine, emergency = ("王经理 021-5555 0101", "风险管理部 张主任 139 0000 1111") if zh else \
        ("Mr Wang 021-5555 0101", "Risk office, Director Zhang 139 0000 1111")
    demo.note(f'$ fieldbot bank add --name 招商银行 --agreement CMB-2026-07 --start 2026-01-01 --end 2028-12-31 '
              f'--routine-contact "{routine}" --emergency-contact "{emergency}"')
    async with h.db.write() as session:
        await banks.add_bank(session, name="招商银行", agreement_no="CMB-2026-07", start=date(2026, 1, 1),
                             end=date(2028, 12, 31), routine_contact=routine, emergency_contact=emergency,
                             now=h.clock.now())
        case = await banks.find_case(session, "ZS-0002")
        holder = await current_assignee(session, case.id)
    await demo.command(admin, "/banks")
    calls = await demo.command(admin, "/bankalert", "ZS-0002")
    why = _button(calls, b.BankAlertReason)
    await demo.press(admin, why["callback_data"], why["text"])
    await demo.say(admin, "债务人正在转卖抵押车辆" if zh else "The debtor is selling the pledged car")
    await demo.command(boss, "/letter", "ZS-0002")
    await demo.say(boss, "2026-12-01")
    calls = await demo.say(boss, "XA123456789CN")
    refused = _button(calls, b.LetterMark)
    for row in (calls[-1].params.get("reply_markup") or {}).get("inline_keyboard", []):
        for button in row:
            if str(button.get("callback_data", "")).endswith(":refused"):
                refused = button
    await demo.press(boss, refused["callback_data"], refused["text"])
    if holder is not None and holder.telegram_user_id is not None:
        collector = demo.person(holder.telegram_user_id, holder.name)
        calls = await demo.command(collector, "/special", "ZS-0002")
        kind = _button(calls, b.SpecialApply)
        await demo.press(collector, kind["callback_data"], kind["text"])
        await demo.say(collector, "有还款能力但拒不还款，建议起诉" if zh else "Able to pay but refuses: legal action")
        before = len(h.api.calls)
        await h.deliver_outbox()
        demo.show(h.api.calls[before:])
        approve = _button(h.api.calls[before:], b.SpecialApprove)
        await demo.press(boss, approve["callback_data"], approve["text"])
        before = len(h.api.calls)
        await h.deliver_outbox()
        demo.show(h.api.calls[before:])
        arranged = _button(h.api.calls[before:], b.SpecialArranged)
        await demo.press(admin, arranged["callback_data"], arranged["text"])
    await demo.command(boss, "/case", "ZS-0002")


async def scene_custody(demo: Demo) -> None:
    """The admin's side of the record: a backup to two folders, the audit log checked, a legal hold, /status,
    and a restore into an empty folder."""
    t, h = demo.t, demo.harness
    demo.title(t("demo.scene.custody"))
    runtime = h.runtime
    admin_name = demo.people[9005]
    admin = demo.person(9005, admin_name)
    root = runtime.settings.data_dir
    branch, head_office = root.parent / f"{root.name}-backup-branch", root.parent / f"{root.name}-backup-hq"
    demo.note(f"$ fieldbot backup --to {branch.name} --to {head_office.name}")
    made = await backup.make_backup(runtime.db, runtime.settings, now=h.clock.now(), folders=[branch, head_office],
                                    actor=admin_name)
    demo.note(t("backup.done", id=made.backup_id, files=len(made.manifest.files), copied=made.copied,
                folders=len(made.folders), entries=made.manifest.audit_head.seq))
    demo.note("$ fieldbot audit verify")
    async with runtime.db.read() as session:
        demo.note((await audit.verify(session, checkpoints=[made.manifest.audit_head])).describe())
    reason = "法院调取" if demo.lang == "zh_CN" else "court request"
    demo.note(f"$ fieldbot hold ZS-0002 --reason {reason}")
    async with runtime.db.write() as session:
        case = await retention.find_case(session, "ZS-0002")
        hold = await retention.place_hold(session, case, reason, admin_name, h.clock.now())
        demo.note(t("retention.hold.placed", hold_id=hold.id, bank=case.bank, case_no=case.case_no))
    await demo.command(admin, "/status")
    restored = root.parent / f"{root.name}-restored"
    demo.note(f"$ fieldbot restore --from {head_office.name} --to sqlite+aiosqlite:///{restored.name}/fieldbot.db "
              f"--media {restored.name} --approval HQ-2026-001")
    done = await backup.restore(runtime.settings, source=head_office, data_dir=restored,
                                target_url=f"sqlite+aiosqlite:///{restored / 'fieldbot.db'}", by=admin_name,
                                approval="HQ-2026-001", now=h.clock.now())
    demo.note(t("restore.done", id=done.manifest.backup_id, rows=sum(done.counts.values()), files=done.files,
                entries=done.verify.checked))


async def scene_branch_report(demo: Demo) -> None:
    """The month's branch report: it goes out with the monthly report, and a manager of the branch and head
    office approve it in chat; the supervisor is told."""
    t, h = demo.t, demo.harness
    demo.title(t("demo.scene.branch_report"))
    manager = demo.person(9021, "周经理" if demo.lang == "zh_CN" else "Zhou (branch manager)")
    head_office = demo.person(9022, "总部郑" if demo.lang == "zh_CN" else "Zheng (head office)")
    await h.onboard(manager, demo.people[9021], Role.MANAGER, team=None, branch=BRANCH[demo.lang])
    await h.onboard(head_office, demo.people[9022], Role.HQ, team=None)
    demo.note(f"$ fieldbot staff add --name {demo.people[9021]} --role manager --branch {BRANCH[demo.lang]}")
    demo.note(f"$ fieldbot staff add --name {demo.people[9022]} --role hq")
    await _tick(demo, "2027-01-04T09:30")
    for person in (manager, head_office):
        approve = _button(h.api.sent("sendMessage", person.id), b.BranchReportApprove)
        await demo.press(person, approve["callback_data"], approve["text"])
    before = len(h.api.calls)
    await h.deliver_outbox()
    demo.show(h.api.calls[before:])


Scene = Callable[[Demo], Awaitable[None]]
async def scene_field_rules(demo: Demo) -> None:
    """The phone collector's hand-off and its 2-working-day clock, the field collector's plan of the day filed
    with the supervisor, a malicious default flagged, and the month's targets on /team."""
    from decimal import Decimal

    from sqlalchemy import select

    from bot.services import assignment, targets
    from bot.storage.models import Case, Staff

    t, h = demo.t, demo.harness
    zh = demo.lang == "zh_CN"
    demo.title(t("demo.scene.field_rules"))
    boss = demo.person(9001, demo.people[9001])
    phone = demo.person(9010, "孙电催" if zh else "Sun (phone)")
    walker = demo.person(9011, "周外访" if zh else "Zhou (field)")
    await h.onboard(phone, demo.people[9010], Role.PHONE_COLLECTOR, team="A",
                    supervisor_id=demo.staff_ids["supervisor"])
    walker_id = await h.onboard(walker, demo.people[9011], Role.COLLECTOR, team="A",
                                supervisor_id=demo.staff_ids["supervisor"])
    h.clock.set(datetime(2026, 12, 11, 14, 0, tzinfo=ZoneInfo("Asia/Shanghai")))  # a Friday
    await h.tick()  # what fell due since the last scene goes out first, unshown
    now = h.clock.now()
    async with h.db.write() as session:
        case = Case(bank="招商银行", case_no="ZS-0101", debtor_name="吴九", address="上海市黄浦区南京东路300号",
                    phone="13900139000", amount_due_fen=3500000, overdue_days=120, status="new", team="A",
                    portfolio="student_loan", lat=31.2380, lon=121.4840, created_at=now, updated_at=now)
        session.add(case)
        await session.flush()
        phone_id = await session.scalar(select(Staff.id).where(Staff.telegram_user_id == phone.id))
        assert phone_id is not None
        await assignment.assign_cases(session, [case.id], phone_id, actor=None, reason="demo", now=now,
                                      calendar=h.runtime.calendar)
        case_id = case.id
        await targets.set_default_rate(session, "student_loan", Decimal("5"), now=now)
        await targets.set_recovered(session, month="2026-12", amount_fen=20000000, team="A", now=now)
    demo.note("$ fieldbot target set --portfolio student_loan --default-rate 5")
    demo.note("$ fieldbot target set --team A --month 2026-12 --recovered 200000")
    await demo.command(phone, "/tofield")
    await demo.press(phone, b.ToFieldCase(case_id).pack(), "ZS-0101")
    await demo.press(phone, b.ToFieldCollector(case_id, walker_id).pack(), demo.people[9011])
    await demo.say(phone, "客户说周一上午在家" if zh else "The debtor says he is home on Monday morning")
    before = len(h.api.calls)
    await h.deliver_outbox()
    demo.show(h.api.calls[before:])
    h.clock.set(datetime(2026, 12, 14, 10, 0, tzinfo=ZoneInfo("Asia/Shanghai")))
    await h.tick()  # Monday's weekly reports, unshown
    await _tick(demo, "2026-12-15T09:00")
    await demo.command(walker, "/visits")
    reason = "名下有车有房却拒不还款，建议发律师函" if zh else "Owns a car and a flat, refuses to pay: suggest a letter"
    await demo.command(walker, "/flag", f"ZS-0101 {reason}")
    before = len(h.api.calls)
    await h.deliver_outbox()
    demo.show(h.api.calls[before:])
    await _tick(demo, "2026-12-15T18:00")
    await demo.command(boss, "/team")


SCENES: list[Scene] = [scene_onboarding, scene_intake, scene_visit, scene_deadlines, scene_emergency, scene_handover,
                       scene_office, scene_custody, scene_procedure, scene_field_rules, scene_branch_report]


async def run_demo(*, lang: str, out: TextIO, scenes: Sequence[Scene] = SCENES) -> int:
    start = datetime(2026, 11, 2, 9, 0, tzinfo=ZoneInfo("Asia/Shanghai"))
    with tempfile.TemporaryDirectory(prefix="fieldbot-demo-") as folder:
        harness = BotHarness(sandbox_settings(Path(folder) / "data", default_locale=lang), ManualClock(start))
        await harness.start()
        demo = Demo(harness, out, lang)
        try:
            for scene in scenes:
                await scene(demo)
        finally:
            await harness.close()
        problems = harness.api.violations
    out.write(f"\n{translator(lang)('demo.done')}\n")
    out.write(f"{translator(lang)('demo.console')}\n")
    if problems:
        out.write("\n".join(problems) + "\n")
        return 1
    return 0
