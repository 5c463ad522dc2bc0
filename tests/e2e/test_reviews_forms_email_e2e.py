"""Site forms, Tilda, 2GIS and Yandex reviews and e-mail end to end: each arrives the way its
platform sends it — a multipart POST to the webhook, the fake 2GIS/Yandex cabinets read by the
review pollers over HTTP, messages in a real Dovecot mailbox read over IMAP, staff answers sent
to a real SMTP server — is parsed and routed by the sample rule directory, and lands in the
sandbox Bitrix24 portal. The portal is checked over HTTP: its REST API (``crm.item.get``,
``crm.timeline.comment.list``), its call log (``/_sandbox/calls``) and ``/_sandbox/state``.

Every case runs on SQLite and on PostgreSQL (the ``engine`` fixture)."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from sqlalchemy import select
from sqlalchemy.engine import Engine

from connectors import get_connector
from connectors.base import OutgoingReply, SourceConfig
from connectors.email import poller as email_poller
from connectors.twogis import poller as twogis_poller
from connectors.twogis.client import TwoGisClient
from connectors.yandex import poller as yandex_poller
from hub.db import session_scope
from hub.fakes.serve import serve
from hub.fakes.twogis import FakeTwoGis
from hub.fakes.yandex import FakeYandex
from hub.models import Appeal, CrmLink, RawEvent, RawEventState
from hub.settings import get_settings
from hub.storage import sources as sources_store
from tests.connectors.helpers import FIXTURES
from tests.e2e.test_channels_e2e import Hub, _add_source, hub  # noqa: F401 - the fixture
from tests.mailservers import Dovecot, MailUser, SmtpSink, dovecot  # noqa: F401 - the fixture

# routing_rules/sample/stores.csv: store 1001 (Moscow) has this 2GIS branch and Yandex org;
# store 1012 is in Moscow too.
BRANCH, ORG = "70000001462117106", "5452197270"
QUALITY = {"entity": "deal", "pipeline": 1, "stage": "C1:NEW"}  # rule review-low-rating


class Portal:
    """The sandbox portal, read the way an integrator would: over HTTP."""

    def __init__(self, url: str) -> None:
        self.url = url

    def rest(self, method: str, **params: Any) -> Any:
        r = httpx.post(f"{self.url}/rest/1/sandbox/{method}", json=params, timeout=10)
        assert r.status_code == 200, r.text
        return r.json()["result"]

    def state(self) -> dict[str, int]:
        return httpx.get(f"{self.url}/_sandbox/state", timeout=10).json()

    def deal(self, deal_id: int | None) -> dict[str, Any]:
        assert deal_id is not None
        return self.rest("crm.item.get", entityTypeId=2, id=deal_id)["item"]

    def comments(self, deal_id: int | None) -> list[str]:
        rows = self.rest(
            "crm.timeline.comment.list", filter={"ENTITY_ID": deal_id, "ENTITY_TYPE": "deal"}
        )
        return [r["COMMENT"] for r in rows]

    def created(self, entity_type_id: int) -> int:
        """How many items of this type ClientHub asked the portal to create (the call log)."""
        calls = httpx.get(
            f"{self.url}/_sandbox/calls", params={"method": "crm.item.add"}, timeout=10
        ).json()["calls"]
        return sum(
            1
            for c in calls
            if str(c["params"].get("entityTypeId")) == str(entity_type_id) and c["status"] == 200
        )


class E2E:
    def __init__(self, base: Hub) -> None:
        self.hub = base
        self.engine: Engine = base.engine
        self.portal = Portal(base.sandbox_url)

    def drain(self) -> None:
        self.hub.drain()

    def appeals(self) -> list[Appeal]:
        return self.hub.appeals()

    def raw_events(self) -> list[RawEvent]:
        with session_scope(self.engine, read_only=True) as s:
            return list(s.execute(select(RawEvent).order_by(RawEvent.id)).scalars())

    def links(self, kind: str) -> dict[str, int]:
        with session_scope(self.engine, read_only=True) as s:
            rows = s.execute(select(CrmLink).where(CrmLink.kind == kind)).scalars()
            return {r.key: r.crm_id for r in rows}

    def source(self, channel: str, name: str) -> SourceConfig:
        with session_scope(self.engine, read_only=True) as s:
            row = next(
                r for r in sources_store.list_all(s) if (r.channel, r.source) == (channel, name)
            )
            return sources_store.to_config(row)


@pytest.fixture
def e2e(hub: Hub, monkeypatch: pytest.MonkeyPatch) -> E2E:  # noqa: F811
    """The hub of test_channels_e2e, with its public URL set to where it really listens, so that
    the links delivery writes into the portal (files, the appeal) can be followed."""
    monkeypatch.setenv("CLIENTHUB_PUBLIC_URL", hub.url)
    get_settings.cache_clear()
    return E2E(hub)


def assert_routed_deal(e2e: E2E, appeal: Appeal) -> dict[str, Any]:
    """The appeal's deal exists in the portal where routing sent it, with its responsible."""
    assert appeal.delivery_state == "delivered", appeal.delivery_error
    assert appeal.crm_entity == "deal" and appeal.target and appeal.bitrix_user_id
    deal = e2e.portal.deal(appeal.crm_entity_id)
    assert deal["categoryId"] == appeal.target["pipeline"]
    assert deal["stageId"] == appeal.target["stage"]
    assert deal["assignedById"] == appeal.bitrix_user_id
    assert deal["originId"] == str(appeal.id)
    return deal


def rule_ids(appeal: Appeal) -> list[str]:
    return [t["rule"] for t in appeal.trace if t["step"] == "rule"]


def thread_link(appeal: Appeal) -> str:
    return f"thread:{appeal.channel}:{appeal.source}:{appeal.thread_key}"


def assert_one_deal_per_thread(e2e: E2E, first: Appeal, *later: Appeal) -> list[str]:
    """Every later appeal of the thread is a comment in the first one's deal: no other deal or
    lead was created, and the outbox has one deal and one comment per appeal."""
    deal_id = first.crm_entity_id
    for a in later:
        assert a.thread_key == first.thread_key
        assert a.delivery_state == "delivered", a.delivery_error
        assert (a.crm_entity, a.crm_entity_id) == ("deal", deal_id)
    state = e2e.portal.state()
    assert (state["deals"], state["leads"]) == (1, 0)
    assert (e2e.portal.created(2), e2e.portal.created(1)) == (1, 0)
    assert e2e.links("deal") == {thread_link(first): deal_id}
    assert e2e.links("lead") == {}
    comments = e2e.links("comment")
    appeals = [first, *later]
    assert set(comments) == {f"appeal:{a.id}" for a in appeals}
    assert [comments[f"appeal:{a.id}"] for a in appeals] == [a.crm_comment_id for a in appeals]
    texts = e2e.portal.comments(deal_id)
    assert len(texts) == len(appeals)
    return texts


# --- site forms ---------------------------------------------------------------------------------


class TestSiteForm:
    def test_a_form_with_a_file_becomes_a_deal_whose_comment_links_the_file(self, e2e) -> None:
        photo = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4
        text = "Ценник на полке 199 рублей, а на кассе пробили 249. Фото ценника прикладываю."
        r = httpx.post(
            f"{e2e.hub.url}/hooks/form/site",
            data={
                "name": "Пётр Иванов",
                "phone": "+7 916 123-45-67",
                "message": text,
                "store": "1012",  # the form's «Магазин» list
                "_hp": "",
                "_elapsed_ms": "9000",
            },
            files={"photo": ("ценник 1.png", photo, "image/png")},
        )
        assert r.status_code == 200, r.text
        e2e.drain()
        [appeal] = e2e.appeals()
        assert (appeal.channel, appeal.kind, appeal.text) == ("form", "form", text)
        # The store the customer picked gives the store and the region (ruleset store_fields).
        assert (appeal.store, appeal.region) == ("1012", "moscow")
        region_step = next(t for t in appeal.trace if t["step"] == "region")
        assert region_step["rule"] == "field" and "магазин 1012" in region_step["message"]
        deal = assert_routed_deal(e2e, appeal)
        assert deal["title"].startswith("Сайт: заявка — Москва")

        [att] = appeal.attachments
        sha = hashlib.sha256(photo).hexdigest()
        link = f"{e2e.hub.url}/files/e{appeal.raw_event_id}.{sha}/{quote('ценник 1.png')}"
        assert att["url"] == link.removeprefix(e2e.hub.url)
        [comment] = e2e.portal.comments(deal["id"])
        assert text in comment
        assert f"[URL={link}]ценник 1.png[/URL]" in comment
        assert "Пётр Иванов" in comment
        got = httpx.get(link, timeout=10)  # what a manager clicking the link in Bitrix24 gets
        assert (got.status_code, got.content, got.headers["content-type"]) == (
            200,
            photo,
            "image/png",
        )
        assert e2e.links("deal") == {thread_link(appeal): deal["id"]}

    def test_tilda_check_is_not_stored_and_a_retried_submission_is_one_deal(self, e2e) -> None:
        _add_source(e2e.engine, "tilda", "landing", {}, {"api_key": "tilda-k3y"})
        url = f"{e2e.hub.url}/hooks/tilda/landing"
        form = {"Content-Type": "application/x-www-form-urlencoded"}
        check = httpx.post(url, content=b"test=test", headers=form)
        assert (check.status_code, check.text) == (200, "ok")
        assert e2e.raw_events() == []

        body = (
            "Name=Ольга&Phone=%2B7+495+592-05-52&Email=olga%40example.ru"
            "&Textarea=Хочу+предложить+помещение+под+магазин+в+аренду,+120+м2"
            "&tranid=4242424:7171717171&formid=form1001"
        ).encode()
        for _ in range(2):  # Tilda retries when our "ok" is late; the retry comes after delivery
            r = httpx.post(url, content=body, headers={**form, "X-API-Key": "tilda-k3y"})
            assert (r.status_code, r.text) == (200, "ok")
            e2e.drain()
        [raw] = e2e.raw_events()
        [appeal] = e2e.appeals()
        assert (appeal.channel, appeal.external_id) == ("tilda", "tranid:4242424:7171717171")
        assert (appeal.author_name, appeal.author_email) == ("Ольга", "olga@example.ru")
        assert "X-API-Key" not in appeal.fields and appeal.raw_event_id == raw.id
        deal = assert_routed_deal(e2e, appeal)
        assert "помещение под магазин" in e2e.portal.comments(deal["id"])[0]
        assert e2e.portal.state()["deals"] == 1 and e2e.portal.created(2) == 1


# --- reviews from the cabinets ------------------------------------------------------------------


@pytest.fixture
def cabinets(e2e: E2E, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[FakeTwoGis, FakeYandex]]:
    """Both fake cabinets on loopback, with a source for store 1001's branch and organisation,
    and the unofficial cabinet APIs switched on."""
    monkeypatch.setenv("CLIENTHUB_TWOGIS_UNOFFICIAL_CABINET_API", "true")
    monkeypatch.setenv("CLIENTHUB_YANDEX_UNOFFICIAL_CABINET_API", "true")
    get_settings.cache_clear()
    TwoGisClient._tokens.clear()
    twogis_poller.SCHEDULE._due.clear()
    yandex_poller.SCHEDULE._due.clear()
    twogis, yandex = FakeTwoGis(), FakeYandex()
    with serve(twogis.app) as twogis_url, serve(yandex.app) as yandex_url:
        often = {"interval_seconds": 0, "rate_per_second": 1000}
        twogis_login = {"login": twogis.login, "password": twogis.password}
        yandex_cookies = {"session_id": yandex.session_id, "session_id2": yandex.session_id2}
        _add_source(e2e.engine, "twogis", BRANCH, {"api_url": twogis_url, **often}, twogis_login)
        _add_source(e2e.engine, "yandex", ORG, {"api_url": yandex_url, **often}, yandex_cookies)
        yield twogis, yandex
    get_settings.cache_clear()


def _review_then_edit(
    e2e: E2E, poll_all: Callable[[Engine], int], edit: Callable[[], None]
) -> tuple[Appeal, Appeal]:
    assert poll_all(e2e.engine) == 1  # the scheduler's tick, run once
    e2e.drain()
    [review] = e2e.appeals()
    edit()
    assert poll_all(e2e.engine) == 1
    e2e.drain()
    first, edited = e2e.appeals()
    assert first.id == review.id and edited.is_edit and not first.is_edit
    return first, edited


def _assert_low_rating_in_quality(e2e: E2E, review: Appeal, rating: int) -> dict[str, Any]:
    assert (review.kind, review.rating, review.fields["low_rating"]) == ("review", rating, True)
    assert (review.store, review.region) == ("1001", "moscow")  # the branch is store 1001's
    assert (review.department, review.target) == ("quality", QUALITY)
    assert rule_ids(review)[-1] == "review-low-rating"
    deal = assert_routed_deal(e2e, review)
    assert (deal["categoryId"], deal["stageId"]) == (1, "C1:NEW")
    return deal


class TestReviews:
    def test_a_2gis_review_is_a_quality_deal_and_its_edit_a_comment_in_it(
        self, e2e, cabinets
    ) -> None:
        twogis, _ = cabinets
        twogis.add_review(BRANCH, "148823911", rating=2, author="Ольга К.",
                          text="Кассир нагрубила, очередь 20 минут.",
                          created="2024-06-01T18:20:11+03:00")  # fmt: skip
        first, edited = _review_then_edit(
            e2e,
            twogis_poller.poll_all,
            lambda: twogis.edit("148823911", text="Кассир извинилась, вопрос решили.", rating=4),
        )
        deal = _assert_low_rating_in_quality(e2e, first, 2)
        assert (edited.rating, "low_rating" in edited.fields) == (4, False)
        created, changed = assert_one_deal_per_thread(e2e, first, edited)
        assert "Кассир нагрубила, очередь 20 минут." in created and "Оценка: 2" in created
        assert "[Отзыв изменён автором.]\nКассир извинилась, вопрос решили." in changed
        assert "Оценка: 4" in changed
        assert f"https://2gis.ru/firm/{BRANCH}/tab/reviews" in created  # where to answer it
        assert e2e.portal.deal(deal["id"])["stageId"] == "C1:NEW"  # the edit moves nothing

    def test_a_yandex_review_is_a_quality_deal_and_its_edit_a_comment_in_it(
        self, e2e, cabinets
    ) -> None:
        _, yandex = cabinets
        yandex.add_review(ORG, "Vr7x9k2LmQp", rating=1, author="Марина С.",
                          text="Просрочка на полке с молочкой, кефир до 28 мая.",
                          created=1717250400)  # fmt: skip
        first, edited = _review_then_edit(
            e2e,
            yandex_poller.poll_all,
            lambda: yandex.edit("Vr7x9k2LmQp", text="Кефир убрали, спасибо.", rating=5),
        )
        _assert_low_rating_in_quality(e2e, first, 1)
        assert edited.rating == 5
        created, changed = assert_one_deal_per_thread(e2e, first, edited)
        assert "Просрочка на полке с молочкой" in created and "Оценка: 1" in created
        assert "Кефир убрали, спасибо." in changed and "Оценка: 5" in changed


# --- e-mail -------------------------------------------------------------------------------------


def _mail(sender: str, subject: str, body: str, mid: str, **headers: str) -> EmailMessage:
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = sender, "support@retail-sample.ru", subject
    msg["Message-ID"], msg["Date"] = mid, "Tue, 04 Jun 2024 10:00:00 +0300"
    for name, value in headers.items():
        msg[name.replace("_", "-")] = value
    msg.set_content(body)
    return msg


@dataclass
class AuthSmtp(SmtpSink):
    """aiosmtpd that, like a mail provider, takes mail only after AUTH with the mailbox's
    password (plain text on loopback)."""

    password: str = ""
    logins: list[str] = field(default_factory=list)

    def authenticate(self, *args: object) -> AuthResult:
        auth_data = args[-1]  # (server, session, envelope, mechanism, auth_data)
        if not isinstance(auth_data, LoginPassword):
            return AuthResult(success=False, handled=False)
        self.logins.append(auth_data.login.decode())
        return AuthResult(success=auth_data.password.decode() == self.password)

    def serve(self) -> Iterator[AuthSmtp]:
        controller = Controller(
            self,
            hostname=self.host,
            port=self.port,
            auth_required=True,
            auth_require_tls=False,
            authenticator=self.authenticate,
        )
        controller.start()
        try:
            yield self
        finally:
            controller.stop()


@dataclass
class Mail:
    box: MailUser
    smtp: AuthSmtp


@pytest.fixture
def mail(e2e: E2E, dovecot: Dovecot) -> Iterator[Mail]:  # noqa: F811
    """A fresh Dovecot mailbox connected as the ``email/support`` source, answering by SMTP."""
    user = dovecot.add_user()
    for smtp in AuthSmtp(password=user.password).serve():
        config = user.source_config(
            smtp_host=smtp.host,
            smtp_port=smtp.port,
            smtp_security="none",
            from_address="support@retail-sample.ru",
            from_name="Семейный рынок",
        )
        _add_source(e2e.engine, "email", "support", config, {"password": user.password})
        yield Mail(user, smtp)


# aiosmtpd warns about AUTH without TLS; this server listens on loopback only.
@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS:UserWarning")
class TestEmail:
    def test_a_thread_is_one_deal_and_auto_replies_are_kept_out(self, e2e, mail) -> None:
        mailbox, smtp = mail.box, mail.smtp
        customer = "Анна Петрова <anna.petrova@example.ru>"
        first = _mail(customer, "Возврат пылесоса", "Пылесос не включается, хочу вернуть.",
                      "<first-1@mail.example.ru>")  # fmt: skip
        receipt = b"%PDF-1.4 receipt 0042-17"
        first.add_attachment(receipt, maintype="application", subtype="pdf", filename="чек.pdf")
        mailbox.append(first.as_bytes())
        assert email_poller.poll_all(e2e.engine) == 1
        e2e.drain()
        [appeal] = e2e.appeals()
        assert (appeal.kind, appeal.author_email) == ("email", "anna.petrova@example.ru")
        deal = assert_routed_deal(e2e, appeal)
        [comment] = e2e.portal.comments(deal["id"])
        sha = hashlib.sha256(receipt).hexdigest()
        link = f"{e2e.hub.url}/files/{sha}/{quote('чек.pdf')}"
        assert "Пылесос не включается" in comment and f"[URL={link}]чек.pdf[/URL]" in comment
        assert httpx.get(link, timeout=10).content == receipt

        # Staff answer by SMTP; the customer answers that, and adds to her own first letter.
        source = e2e.source("email", "support")
        sent = get_connector("email").send_reply(
            OutgoingReply("77", "Пришлите, пожалуйста, номер чека.", appeal.thread_key,
                          appeal.external_id, None, appeal.fields),
            source,
        )  # fmt: skip
        [ours] = smtp.messages
        assert smtp.logins == [mailbox.name]  # logged in as the mailbox
        assert ours["Message-ID"] == sent.platform_message_id
        assert ours["In-Reply-To"] == "<first-1@mail.example.ru>"
        mailbox.append(_mail(customer, "Re: Возврат пылесоса", "Забыла: серийный номер VC-889.",
                             "<first-2@mail.example.ru>", In_Reply_To="<first-1@mail.example.ru>",
                             References="<first-1@mail.example.ru>").as_bytes())  # fmt: skip
        # Her answer asks for a price list: on its own, routing would make it a supplier lead.
        mailbox.append(_mail(customer, "ответ", "Номер чека 0042-17. И пришлите прайс-лист.",
                             "<first-3@mail.example.ru>",
                             In_Reply_To=str(ours["Message-ID"])).as_bytes())  # fmt: skip
        mailbox.append((FIXTURES / "email" / "message__auto_reply.eml").read_bytes())
        assert email_poller.poll_all(e2e.engine) == 3
        e2e.drain()

        first_appeal, own_reply, answer = e2e.appeals()
        assert answer.target["entity"] == "lead"  # what routing said, on its own
        texts = assert_one_deal_per_thread(e2e, first_appeal, own_reply, answer)
        assert "серийный номер VC-889" in texts[1] and "Номер чека 0042-17" in texts[2]
        auto = [r for r in e2e.raw_events() if r.external_id == "msgid:<auto-1@partner.example>"]
        assert [(r.state, r.state_reason) for r in auto] == [
            (RawEventState.ignored, "not written by a person: Auto-Submitted: auto-replied")
        ]

    def test_review_notifications_become_review_deals_with_the_link(
        self, e2e, mail, cabinets
    ) -> None:
        for platform in ("2gis", "yandex"):
            eml = FIXTURES / "email" / f"notification_email__{platform}_new_review.eml"
            mail.box.append(eml.read_bytes())
        assert email_poller.poll_all(e2e.engine) == 2
        e2e.drain()
        twogis, yandex = e2e.appeals()
        assert (twogis.channel, twogis.source, twogis.external_id) == (
            "twogis", BRANCH, "review:148823911",
        )  # fmt: skip
        assert (yandex.channel, yandex.source, yandex.external_id) == (
            "yandex", ORG, "review:Vr7x9k2LmQp",
        )  # fmt: skip
        review_links = {
            twogis.id: f"https://account.2gis.com/orgs/70000001000123/branches/{BRANCH}"
            "/reviews/148823911",
            yandex.id: "https://yandex.ru/maps/org/semeyny_rynok/5452197270/reviews/"
            "?reviews%5BpublicId%5D=Vr7x9k2LmQp",
        }
        for appeal, rating in ((twogis, 2), (yandex, 1)):
            assert appeal.fields["url"] == review_links[appeal.id]
            assert appeal.fields["via"] == "e-mail"
            _assert_low_rating_in_quality(e2e, appeal, rating)
            [comment] = e2e.portal.comments(appeal.crm_entity_id)
            assert f"Оценка: {rating}" in comment and review_links[appeal.id] in comment
        assert e2e.portal.state()["deals"] == 2
        assert set(e2e.links("deal")) == {thread_link(twogis), thread_link(yandex)}

        # The cabinet poller then lists the same review: stored once, no second deal.
        cabinets[0].add_review(BRANCH, "148823911", rating=2, author="Ольга К.",
                               text="Кассир нагрубила, очередь 20 минут.",
                               created="2024-06-01T18:20:11+03:00")  # fmt: skip
        assert twogis_poller.poll_all(e2e.engine) == 0
        e2e.drain()
        assert len(e2e.appeals()) == 2 and e2e.portal.created(2) == 2
