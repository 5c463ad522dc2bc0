"""Faithful fakes of the platforms ClientHub talks to (VK, Telegram, OK, 2GIS and Yandex
cabinets, Mango/UIS/CTI PBXs, an IMAP mailbox), built from each platform's documented formats.

They live in the package, not only in the tests, because ``clienthub demo`` runs them on loopback
ports to send a realistic stream of appeals through ClientHub's real webhook and poller paths;
the tests use the very same fakes, so the demo shows what the tests check.
"""
