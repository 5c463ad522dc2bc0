"""Secrets never reach a log line."""

from __future__ import annotations

import json
import logging

from hub.logging import JsonFormatter, bind_context, redact


def test_webhook_codes_and_tokens_are_redacted():
    line = "POST https://a.bitrix24.ru/rest/1/abcd1234efgh/crm.item.add?auth=tok123&x=1"
    assert redact(line) == "POST https://a.bitrix24.ru/rest/1/***/crm.item.add?auth=***&x=1"
    assert "s3cr3t" not in redact("refresh_token=s3cr3t&client_secret=zzz")


def test_json_lines_carry_context_fields():
    record = logging.LogRecord("t", logging.INFO, __file__, 1, "hello %s", ("world",), None)
    record.appeal_id = 42
    out = json.loads(JsonFormatter().format(record))
    assert out["msg"] == "hello world"
    assert out["appeal_id"] == 42
    adapter = bind_context(logging.getLogger("t"), job_id="7")
    _, kwargs = adapter.process("m", {"extra": {"appeal_id": 1}})
    assert kwargs["extra"] == {"job_id": "7", "appeal_id": 1}
