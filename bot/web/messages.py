"""The message ids the console's page shows, served to it in the viewer's language (``GET /api/me``)."""

from __future__ import annotations

from bot.i18n import N_, Translator

PAGE_MESSAGES = (
    N_("web.title"), N_("web.loading"), N_("web.signed_in_as"), N_("web.error.sign_in"), N_("web.error.refused"),
    N_("web.error.rate"), N_("web.error.network"), N_("web.error.not_found"),
    N_("web.tab.map"), N_("web.tab.cases"), N_("web.tab.reviews"), N_("web.tab.incidents"), N_("web.tab.reports"),
    N_("web.map.cases"), N_("web.map.visits"), N_("web.map.collectors"), N_("web.map.incidents"),
    N_("web.map.empty"), N_("web.map.plain"),
    N_("web.cases.search"), N_("web.cases.search_button"), N_("web.cases.any_status"),
    N_("web.cases.any_collector"), N_("web.cases.any_bank"), N_("web.cases.overdue"), N_("web.cases.promise_due"),
    N_("web.cases.total"), N_("web.cases.none"), N_("web.cases.prev"), N_("web.cases.next"),
    N_("web.col.case_no"), N_("web.col.debtor"), N_("web.col.bank"), N_("web.col.amount"), N_("web.col.status"),
    N_("web.col.collector"), N_("web.col.due"), N_("web.col.when"), N_("web.col.by"), N_("web.col.ended"),
    N_("web.col.channel"), N_("web.col.paid_on"), N_("web.col.due_on"), N_("web.col.paid"), N_("web.col.alarm"),
    N_("web.col.owner"), N_("web.col.resolution"),
    N_("web.case.back"), N_("web.case.timeline"), N_("web.case.visits"), N_("web.case.promises"),
    N_("web.case.payments"), N_("web.case.assignments"), N_("web.case.actions"), N_("web.case.none"),
    N_("web.case.reassign"), N_("web.case.reassign_to"), N_("web.case.reason"), N_("web.case.hold"),
    N_("web.case.close"), N_("web.case.reopen"), N_("web.case.done"), N_("web.case.evidence_bundle"),
    N_("web.case.file_missing"), N_("web.case.open_photo"),
    N_("web.reviews.none"), N_("web.reviews.approve"), N_("web.reviews.return"), N_("web.reviews.comment"),
    N_("web.reviews.details"), N_("web.reviews.late"), N_("web.reviews.approved"), N_("web.reviews.returned"),
    N_("web.incidents.open"), N_("web.incidents.recent"), N_("web.incidents.none"), N_("web.incidents.figures"),
    N_("web.incidents.delivery"), N_("web.incidents.ack"), N_("web.incidents.target"), N_("web.incidents.met"),
    N_("web.incidents.missed"), N_("web.incidents.no_data"), N_("web.incidents.timeline"),
    N_("web.reports.weekly"), N_("web.reports.monthly"), N_("web.reports.download"), N_("web.reports.visits"),
    N_("web.reports.promises"), N_("web.reports.recovered"), N_("web.reports.none"), N_("web.reports.period"),
)


def page_messages(t: Translator) -> dict[str, str]:
    return {key: t(key) for key in PAGE_MESSAGES}
