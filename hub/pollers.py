"""Every poller ClientHub runs, registered with the scheduler (only the leader runs them).

Each poller polls only the sources that opt in through their config, so registering them all is
free for a company that uses webhooks everywhere.
"""

from __future__ import annotations

from hub.scheduler import register_periodic


def register_all() -> None:
    from connectors.email import poller as email_poller
    from connectors.ok import discussions as ok_discussions
    from connectors.telegram import polling as telegram_polling
    from connectors.twogis import poller as twogis_poller
    from connectors.vk import longpoll as vk_longpoll
    from connectors.yandex import poller as yandex_poller

    register_periodic("vk.longpoll", vk_longpoll.poll_all, 1)
    register_periodic("telegram.getupdates", telegram_polling.poll_all, 1)
    register_periodic("ok.discussions", ok_discussions.poll_all, 60)
    # Each source keeps its own interval (config.interval_seconds); the tick only checks who is due.
    register_periodic("twogis.reviews", twogis_poller.poll_all, 30)
    register_periodic("yandex.reviews", yandex_poller.poll_all, 30)
    register_periodic("email.imap", email_poller.poll_all, 15)
    from hub import escalation  # overdue first replies and absent responsibles

    register_periodic("escalation.sweep", escalation.sweep_all, escalation.SWEEP_SECONDS)
    from hub.storage import dashboard  # past days rolled up before anyone opens the dashboard

    register_periodic("dashboard.warm", dashboard.warm, 300)
