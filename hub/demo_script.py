"""What `clienthub demo` sends: realistic Russian customer appeals, one or two per channel, chosen
so that the sample rule directory (routing_rules/sample) routes them to different topics,
regions and departments, plus the noise it must filter (a contest comment, a blacklisted caller).

Every run gets fresh platform ids (dialogues, messages, calls, reviews), so running the demo
twice adds a second set of dialogues and deals instead of colliding with the first.
"""

from __future__ import annotations

import base64
import secrets
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid

# routing_rules/sample/stores.csv: the VK community of store 1012 (Moscow), the hotline numbers
# of stores 1002 (Moscow, Zelenograd), 1203 (St Petersburg, Pushkin) and 1358 (Nizhny Novgorod),
# the 2GIS branch of store 1204 (St Petersburg) and the Yandex organisation of store 1614 (Kazan).
VK_GROUP = 220001012
LINE_MANGO = "74955920552"
LINE_UIS = "78127406328"
LINE_CTI = "78313653765"
TWOGIS_BRANCH = "70000001341542053"
YANDEX_ORG = "3532262022"
BLACKLISTED = "+79150001313"

MAILBOX = "support@demo.clienthub.local"
TELEGRAM_CHANNEL = -1001987650000  # the shop's channel; comments come from its discussion group
TELEGRAM_GROUP = -1001987650001


@dataclass(frozen=True)
class Appeal:
    """One customer action and what the demo expects of it."""

    key: str
    channel: str  # the channel the appeal is stored under
    label: str  # shown in the progress and the summary
    author: str
    text: str
    filtered: bool = False  # the sample filters keep it out of Bitrix24
    reply: str | None = None  # the operator answers it in the Open Lines chat
    # Bitrix24 telephony steps a call must complete (hub/bitrix24/telephony.py); "record" is
    # added for the Mango call when the server may fetch its recording.
    call_steps: tuple[str, ...] = ()


APPEALS: list[Appeal] = [
    Appeal("vk-message", "vk", "ВКонтакте, сообщение сообществу", "Анна Соколова",
           "Здравствуйте! Ищу работу продавцом-кассиром рядом с домом. Есть вакансии в вашем "
           "магазине на Фрунзе?",
           reply="Здравствуйте, Анна! Да, вакансия продавца-кассира открыта. Приходите на "
           "собеседование в будни с 10 до 17, спросите директора магазина."),
    Appeal("vk-comment", "vk", "ВКонтакте, комментарий под постом", "Ольга Миронова",
           "Купила вчера творог, а он прокисший, хотя срок годности ещё не истёк. Верните деньги!"),
    Appeal("vk-contest", "vk", "ВКонтакте, конкурсный комментарий", "Игорь Павлов",
           "Участвую в конкурсе! #семейныйрынокдарит", filtered=True),
    Appeal("telegram-comment", "telegram", "Telegram, комментарий в обсуждении", "Мария Иванова",
           "В Казани на Баумана ценник на сыр 389 рублей, а на кассе пробили 459. Разберитесь, "
           "пожалуйста",
           reply="Мария, спасибо, что написали! Передали управляющему магазина на Баумана: "
           "разницу вернём на кассе по чеку."),
    Appeal("ok-message", "ok", "Одноклассники, сообщение группе", "Галина Кузнецова",
           "Не начислились бонусы на карту лояльности за покупку 12 июня в Твери, чек сохранила",
           reply="Галина, бонусы начислим вручную в течение суток. Номер карты уже нашли по "
           "телефону."),
    Appeal("form-site", "form", "Форма сайта", "Сергей Орлов",
           "Предлагаем в аренду помещение 240 м² на первом этаже, отдельный вход, парковка"),
    Appeal("tilda-form", "tilda", "Форма Tilda", "ООО «Фермер-Ока»",
           "Мы фермерское хозяйство, хотим поставлять молочную продукцию. Пришлите, пожалуйста, "
           "контакты отдела закупок"),
    Appeal("email-staff", "email", "E-mail в поддержку", "Дмитрий Лебедев",
           "Кассир в магазине в Самаре на Московском шоссе нагрубила мне и отказалась менять "
           "купюру. Хамство!"),
    Appeal("email-thanks", "email", "E-mail в поддержку", "Елена Васильева",
           "Хочу поблагодарить сотрудников магазина в Воронеже на Плехановской: помогли донести "
           "покупки до машины. Спасибо!"),
    Appeal("twogis-review", "twogis", "2ГИС, отзыв (2 звезды)", "Ксения Р.",
           "Грязно в торговом зале, на полу лужи, тележки липкие. Раньше было лучше."),
    Appeal("yandex-review", "yandex", "Яндекс Карты, отзыв (5 звёзд)", "Тимур Г.",
           "Отличный магазин, всегда свежая выпечка и вежливые кассиры. Спасибо!"),
    Appeal("mango-call", "mango", "Звонок, Mango Office (меню: качество)", "+7 916 555-42-10",
           "Входящий звонок на линию магазина, в меню выбрано «1 — качество товара»",
           call_steps=("register", "finish", "bind")),
    Appeal("uis-call", "uis", "Пропущенный звонок, UIS", "+7 921 444-18-07",
           "Пропущенный звонок на линию магазина: задача «перезвонить»",
           call_steps=("register", "finish", "bind", "task")),
    Appeal("cti-call", "cti", "Звонок, Asterisk (меню: работа) + запись", "+7 930 712-55-61",
           "Входящий звонок, в меню выбрано «3 — работа у нас», запись разговора",
           call_steps=("register", "finish", "bind", "record")),
    Appeal("blacklisted-call", "mango", "Звонок с номера из чёрного списка", BLACKLISTED,
           "Навязчивый обзвон: номер в чёрном списке", filtered=True),
]  # fmt: skip


@dataclass
class Run:
    """Fresh platform ids for one demo run."""

    started: int = field(default_factory=lambda: int(time.time()))
    nonce: str = field(default_factory=lambda: secrets.token_hex(4))

    def __post_init__(self) -> None:
        seed = int(self.nonce, 16)
        self.vk_peer = 600_000_000 + seed % 300_000_000
        self.vk_commenter = self.vk_peer + 1
        self.vk_contester = self.vk_peer + 2
        self.vk_post = 1_000 + seed % 50_000
        self.tg_user = 3_000_000_000 + seed % 1_000_000_000
        self.tg_message = 10_000 + seed % 1_000_000
        self.ok_chat = f"chat:C{self.nonce}{secrets.token_hex(4)}"
        self.ok_user = f"user:57{seed % 10**10:010d}"
        self.review_id = str(400_000_000 + seed % 500_000_000)

    def unique(self, what: str) -> str:
        return f"{what}-{self.started}-{self.nonce}"

    def number(self, base: int) -> int:
        return base + int(self.nonce, 16) % 10**8


def vk_message(run: Run, text: str) -> dict[str, object]:
    """``message_new`` as the Callback API sends it (API 5.199)."""
    return {
        "group_id": VK_GROUP, "type": "message_new", "event_id": secrets.token_hex(20),
        "v": "5.199",
        "object": {
            "message": {
                "date": int(time.time()), "from_id": run.vk_peer, "id": run.number(1000),
                "out": 0, "version": 10081, "attachments": [], "fwd_messages": [],
                "conversation_message_id": run.number(500), "important": False,
                "is_hidden": False, "peer_id": run.vk_peer, "random_id": 0, "text": text,
            },
            "client_info": {"button_actions": ["text"], "keyboard": True,
                            "inline_keyboard": True, "carousel": True, "lang_id": 0},
        },
    }  # fmt: skip


def vk_comment(run: Run, author: int, text: str, comment_id: int) -> dict[str, object]:
    """``wall_reply_new``: a comment under the community's post."""
    return {
        "type": "wall_reply_new", "group_id": VK_GROUP, "event_id": secrets.token_hex(20),
        "v": "5.199",
        "object": {
            "id": comment_id, "from_id": author, "post_id": run.vk_post,
            "owner_id": -VK_GROUP, "post_owner_id": -VK_GROUP, "parents_stack": [],
            "date": int(time.time()), "text": text, "thread": {"count": 0},
        },
    }  # fmt: skip


def telegram_comment(run: Run, text: str, first: str, last: str) -> dict[str, object]:
    """A comment in the channel's discussion group: a reply to the post's automatic forward."""
    group = {"id": TELEGRAM_GROUP, "title": "Семейный рынок — обсуждение",
             "username": "semrynok_chat", "type": "supergroup"}  # fmt: skip
    channel = {"id": TELEGRAM_CHANNEL, "title": "Семейный рынок", "username": "semrynok",
               "type": "channel"}  # fmt: skip
    post, now = run.tg_message - 1, int(time.time())
    return {
        "update_id": run.number(700_000_000),
        "message": {
            "message_id": run.tg_message,
            "from": {"id": run.tg_user, "is_bot": False, "first_name": first,
                     "last_name": last, "language_code": "ru"},
            "chat": group, "date": now, "message_thread_id": post,
            "reply_to_message": {
                "message_id": post, "from": {"id": 777000, "is_bot": False,
                                             "first_name": "Telegram"},
                "sender_chat": channel, "chat": group, "date": now - 600,
                "is_automatic_forward": True,
                "forward_origin": {"type": "channel", "chat": channel,
                                   "message_id": run.number(100), "date": now - 605},
                "text": "Неделя сыров: скидки до 30% во всех магазинах сети!",
            },
            "text": text,
        },
    }  # fmt: skip


def ok_message(run: Run, text: str, name: str) -> dict[str, object]:
    """OK Bot API ``MESSAGE_CREATED`` webhook."""
    return {
        "webhookType": "MESSAGE_CREATED",
        "sender": {"user_id": run.ok_user, "name": name},
        "recipient": {"chat_id": run.ok_chat},
        "message": {"text": text, "seq": run.number(98_211_023_614_000_000),
                    "mid": f"mid:{run.ok_chat.removeprefix('chat:')}.{secrets.token_hex(7)}"},
        "timestamp": int(time.time() * 1000),
    }  # fmt: skip


def email(run: Run, *, name: str, address: str, subject: str, text: str) -> bytes:
    msg = EmailMessage()
    msg["From"] = f"{name} <{address}>"
    msg["To"] = MAILBOX
    msg["Subject"] = subject
    msg["Date"] = format_datetime(datetime.now(UTC))
    msg["Message-ID"] = make_msgid(run.unique("mail"), "mail.example.ru")
    msg.set_content(text + f"\n\n{name}\n")
    return msg.as_bytes()


def review_email(run: Run, platform: str, appeal: Appeal, rating: int) -> bytes:
    """The platform's "new review" notification (2GIS: plain text, Yandex: HTML with stars), as
    connectors/email/notifications.py reads the real ones."""
    msg = EmailMessage()
    msg["To"] = MAILBOX
    msg["Date"] = format_datetime(datetime.now(UTC))
    msg["Message-ID"] = make_msgid(run.unique(platform), "notify.example.ru")
    msg["Auto-Submitted"] = "auto-generated"
    if platform == "twogis":
        msg["From"] = "2GIS <noreply@2gis.ru>"
        msg["Subject"] = "Новый отзыв о компании «Семейный рынок»"
        link = (f"https://account.2gis.com/orgs/70000001000123/branches/{TWOGIS_BRANCH}"
                f"/reviews/{run.review_id}")  # fmt: skip
        msg.set_content(
            f"{appeal.author} оставил(а) новый отзыв о «Семейный рынок»\n"
            f"Оценка: {rating}\n\nТекст отзыва:\n{appeal.text}\n\nОтветить: {link}\n"
        )
    else:
        msg["From"] = "Яндекс Бизнес <noreply@business.yandex.ru>"
        msg["Subject"] = "Новый отзыв в Яндекс Картах"
        link = (f"https://yandex.ru/maps/org/semeyny_rynok/{YANDEX_ORG}/reviews/"
                f"?reviews%5BpublicId%5D=Y{run.review_id}")  # fmt: skip
        stars = "★" * rating + "☆" * (5 - rating)
        msg.set_content(
            "<html><body><p>У организации «Семейный рынок» новый отзыв</p>\n"
            f"<p>Автор: {appeal.author}</p><p>{stars}</p>\n<p>Отзыв: {appeal.text}</p>\n"
            f'<p><a href="{link}">Ответить на отзыв</a></p>\n</body></html>\n',
            subtype="html",
        )
    return msg.as_bytes()


def mango_entry(run: Run, what: str) -> str:
    """Mango's ``entry_id``: base64 of the PBX's internal call number."""
    return base64.b64encode(f"{run.number(3_453_000_000)}:{what}".encode()).decode()


def call_id() -> str:
    return str(uuid.uuid4())
