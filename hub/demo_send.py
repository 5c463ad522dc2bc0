"""How `clienthub demo` sends each appeal: through the same door a real platform uses.

VK, Telegram and OK post their webhooks (with their retries) from the fakes; the site form and
Tilda are posted as a browser and Tilda's servers post them; e-mails and the platforms' review
notifications are delivered into the fake mailbox that ClientHub's IMAP poller reads; reviews go
into the fake cabinets when the server polls those; the PBXs post their signed call events and
the Asterisk script uploads its recording.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import httpx

from hub import demo_platforms as dp
from hub import demo_script as ds
from hub.fakes.pbx import cti_post, cti_upload, mango_post, uis_post


@dataclass
class Sent:
    appeal: ds.Appeal
    ok: bool
    detail: str  # what the platform saw, in Russian


@dataclass
class Context:
    hub: str  # ClientHub's base URL
    platforms: dp.Platforms
    run: ds.Run
    cabinets: bool  # reviews through the cabinet pollers rather than the notification e-mails
    mango_recording: bool  # the server may download recordings from the loopback PBX

    def hook(self, key: tuple[str, str]) -> str:
        return f"{self.hub}/hooks/{key[0]}/{key[1]}"


def _http(r: httpx.Response) -> tuple[bool, str]:
    return r.status_code == 200, f"HTTP {r.status_code} {r.text[:40]}".strip()


def vk_message(c: Context, a: ds.Appeal) -> tuple[bool, str]:
    done = c.platforms.vk.deliver(c.hook(dp.VK), ds.vk_message(c.run, a.text), pause=0.5)
    return done.acknowledged, "Callback API: HTTP {} {}".format(*done.attempts[-1])


def _vk_comment(c: Context, a: ds.Appeal, author: int, cid: int) -> tuple[bool, str]:
    event = ds.vk_comment(c.run, author, a.text, cid)
    done = c.platforms.vk.deliver(c.hook(dp.VK), event, pause=0.5)
    return done.acknowledged, "Callback API: HTTP {} {}".format(*done.attempts[-1])


def telegram_comment(c: Context, a: ds.Appeal) -> tuple[bool, str]:
    first, last = a.author.split(" ", 1)
    update = ds.telegram_comment(c.run, a.text, first, last)
    secret = c.platforms.secret(dp.TELEGRAM, "webhook_secret")
    done = c.platforms.telegram.deliver(
        c.hook(dp.TELEGRAM), update, secret=secret, delay_scale=0.25
    )
    return done.acknowledged, f"вебхук: HTTP {done.statuses[-1]}"


def ok_message(c: Context, a: ds.Appeal) -> tuple[bool, str]:
    url = f"{c.hook(dp.OK)}?token={c.platforms.secret(dp.OK, 'url_token')}"
    done = c.platforms.ok.deliver(url, ds.ok_message(c.run, a.text, a.author))
    return done.statuses[-1] == 200, f"вебхук: HTTP {done.statuses[-1]}"


def site_form(c: Context, a: ds.Appeal) -> tuple[bool, str]:
    src = c.platforms.sources[dp.FORM]
    data = {"name": a.author, "phone": "+7 903 610-22-45", "email": "s.orlov@example.ru",
            "city": "Нижний Новгород", "form": "rent", "message": a.text,
            "_hp": "", "_elapsed_ms": "41000"}  # fmt: skip
    headers = {"Idempotency-Key": c.run.unique("form")}
    if src.secrets.get("token"):
        headers["X-ClientHub-Token"] = src.secrets["token"]
    return _http(httpx.post(c.hook(dp.FORM), data=data, headers=headers, timeout=30))


def tilda_form(c: Context, a: ds.Appeal) -> tuple[bool, str]:
    src = c.platforms.sources[dp.TILDA]
    data = {"Name": "Виктор Климов", "Phone": "+7 910 905-33-18", "Email": "zakaz@ferma-oka.ru",
            "Company": a.author, "Textarea": a.text, "formid": "form771",
            "tranid": f"{c.run.number(5_000_000)}:{c.run.number(7_000_000_000)}"}  # fmt: skip
    name = str(src.config.get("api_key_name") or "X-API-Key")
    r = httpx.post(c.hook(dp.TILDA), data=data, headers={name: src.secrets["api_key"]}, timeout=30)
    return _http(r)


def _mail(c: Context, raw: bytes) -> tuple[bool, str]:
    uid = c.platforms.imap.append(ds.MAILBOX, raw)
    return True, f"письмо в ящике {ds.MAILBOX}, UID {uid}"


def email(address: str, subject: str) -> Callable[[Context, ds.Appeal], tuple[bool, str]]:
    def send(c: Context, a: ds.Appeal) -> tuple[bool, str]:
        return _mail(c, ds.email(c.run, name=a.author, address=address, subject=subject,
                                 text=a.text))  # fmt: skip

    return send


def twogis_review(c: Context, a: ds.Appeal) -> tuple[bool, str]:
    if c.platforms.twogis is None:
        return _mail(c, ds.review_email(c.run, "twogis", a, 2))
    created = datetime.now(UTC).astimezone().isoformat(timespec="seconds")
    c.platforms.twogis.add_review(ds.TWOGIS_BRANCH, c.run.review_id, rating=2, text=a.text,
                                  created=created, author=a.author)  # fmt: skip
    return True, f"отзыв в кабинете 2ГИС, филиал {ds.TWOGIS_BRANCH}"


def yandex_review(c: Context, a: ds.Appeal) -> tuple[bool, str]:
    if c.platforms.yandex is None:
        return _mail(c, ds.review_email(c.run, "yandex", a, 5))
    c.platforms.yandex.add_review(ds.YANDEX_ORG, f"Y{c.run.review_id}", rating=5, text=a.text,
                                  created=int(time.time() * 1000), author=a.author)  # fmt: skip
    return True, f"отзыв в кабинете Яндекс Бизнеса, организация {ds.YANDEX_ORG}"


def _digits(phone: str) -> str:
    return "".join(ch for ch in phone if ch.isdigit())


def _mango(c: Context, events: list[tuple[str, dict]]) -> tuple[bool, str]:
    key, salt = c.platforms.secret(dp.MANGO, "key"), c.platforms.secret(dp.MANGO, "salt")
    statuses = [mango_post(c.hook(dp.MANGO), e, p, key=key, salt=salt).status_code
                for e, p in events]  # fmt: skip
    return all(s == 200 for s in statuses), f"события АТС: {', '.join(e for e, _ in events)}"


def mango_call(c: Context, a: ds.Appeal, *, answered: bool = True) -> tuple[bool, str]:
    caller, now = _digits(a.author), int(time.time())
    entry = ds.mango_entry(c.run, a.key)
    leg, rec = f"{entry}:1", f"rec-{c.run.unique(a.key)}"
    base = {"entry_id": entry, "call_id": leg}
    events: list[tuple[str, dict]] = [
        ("call", {**base, "timestamp": now - 150, "seq": 1, "call_state": "Appeared",
                  "location": "ivr", "from": {"number": caller},
                  "to": {"number": ds.LINE_MANGO, "line_number": ds.LINE_MANGO}}),
    ]  # fmt: skip
    if answered:
        operator = {"extension": "105", "number": "sip:operator105@vpbx400000001.mangosip.ru",
                    "line_number": ds.LINE_MANGO}  # fmt: skip
        events += [
            ("dtmf", {**base, "timestamp": now - 145, "seq": 2, "dtmf": "1", "location": "ivr",
                      "initiator": caller, "from_number": caller, "to_number": ds.LINE_MANGO,
                      "line_number": ds.LINE_MANGO}),
            ("call", {**base, "timestamp": now - 140, "seq": 3, "call_state": "Connected",
                      "location": "abonent", "from": {"number": caller}, "to": operator}),
            ("call", {**base, "timestamp": now - 2, "seq": 4, "call_state": "Disconnected",
                      "location": "abonent", "from": {"number": caller}, "to": operator,
                      "disconnect_reason": 1110}),
        ]  # fmt: skip
    events.append(
        ("summary", {"entry_id": entry, "call_direction": 1, "from": {"number": caller},
                     "to": {"number": ds.LINE_MANGO}, "line_number": ds.LINE_MANGO,
                     "create_time": now - 150, "forward_time": now - 146,
                     "talk_time": now - 140 if answered else 0, "end_time": now - 2,
                     "entry_result": 1 if answered else 0,
                     "disconnect_reason": 1110 if answered else 1100})
    )  # fmt: skip
    if answered and c.mango_recording:
        c.platforms.pbx.add(rec, "mp3", size=96_000)
        events.append(("recording", {"entry_id": entry, "call_id": leg, "recording_id": rec,
                                     "recording_state": "Completed", "seq": 6,
                                     "timestamp": now}))  # fmt: skip
    return _mango(c, events)


def uis_call(c: Context, a: ds.Appeal) -> tuple[bool, str]:
    secret, base = c.platforms.secret(dp.UIS, "secret"), c.hook(dp.UIS)
    stamp = datetime.now().astimezone().strftime("%Y-%m-%d %H:%M:%S")
    common = {
        "virtual_phone_number": ds.LINE_UIS, "notification_time": stamp,
        "scenario_name": "Розница — основной", "contact_phone_number": _digits(a.author),
        "communication_number": 1, "call_session_id": c.run.number(2_800_000_000),
    }  # fmt: skip
    statuses = [
        uis_post(base, "incoming_call", {**common, "notification_mnemonic": "incoming_call",
                                         "contact_full_name": None}, secret=secret),
        uis_post(base, "lost_call", {**common, "notification_mnemonic": "lost_call",
                                     "wait_time_duration": 41}, secret=secret),
    ]  # fmt: skip
    ok = all(r.status_code == 200 for r in statuses)
    return ok, "уведомления UIS: incoming_call, lost_call"


def cti_call(c: Context, a: ds.Appeal) -> tuple[bool, str]:
    token, url, cid = c.platforms.secret(dp.CTI, "token"), c.hook(dp.CTI), ds.call_id()
    call = {"direction": "in", "callId": cid, "from": _digits(a.author), "to": ds.LINE_CTI}
    statuses = [
        cti_post(url, {**call, "event": "newCall"}, token=token),
        cti_post(url, {**call, "event": "answer", "answeringNumber": "201"}, token=token),
        cti_post(url, {**call, "event": "hangup", "cause": "normalClearing", "duration": 94,
                       "ivr_choice": "3", "answeringNumber": "201"}, token=token),
    ]  # fmt: skip
    rec = c.platforms.pbx.add(f"cti-{cid}", "wav", size=8_000 * 2 * 6 + 44)  # 6 s of audio
    upload = f"{c.hub}/telephony/cti/{dp.CTI[1]}/recording"
    statuses.append(cti_upload(upload, cid, rec, token=token, filename=f"{cid}.wav"))
    ok = all(r.status_code == 200 for r in statuses)
    return ok, "события Asterisk: newCall, answer, hangup; запись загружена скриптом"


SENDERS: dict[str, Callable[[Context, ds.Appeal], tuple[bool, str]]] = {
    "vk-message": vk_message,
    "vk-comment": lambda c, a: _vk_comment(c, a, c.run.vk_commenter, c.run.number(5000)),
    "vk-contest": lambda c, a: _vk_comment(c, a, c.run.vk_contester, c.run.number(5001)),
    "telegram-comment": telegram_comment,
    "ok-message": ok_message,
    "form-site": site_form,
    "tilda-form": tilda_form,
    "email-staff": email("d.lebedev@example.ru", "Жалоба на кассира"),
    "email-thanks": email("e.vasilieva@example.ru", "Благодарность"),
    "twogis-review": twogis_review,
    "yandex-review": yandex_review,
    "mango-call": mango_call,
    "uis-call": uis_call,
    "cti-call": cti_call,
    "blacklisted-call": lambda c, a: mango_call(c, a, answered=False),
}


def send_all(c: Context, echo: Callable[[str], None]) -> list[Sent]:
    """Send every scripted appeal; a refusal is reported and the rest still go."""
    out = []
    for a in ds.APPEALS:
        try:
            ok, detail = SENDERS[a.key](c, a)
        except httpx.HTTPError as exc:
            ok, detail = False, f"нет связи: {type(exc).__name__}"
        out.append(Sent(a, ok, detail))
        mark = "✓" if ok else "✗"
        echo(f"  {mark} {a.label}: «{_short(a.text)}» — {detail}")
    return out


def _short(text: str, n: int = 48) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"
