"""A reply's recorded delivery is the truth: a late doubt from a worker that read the reply
before the delivery was recorded never overwrites it (hub/replies.py, ``_finish``)."""

from __future__ import annotations

from sqlalchemy.engine import Engine

from hub.db import session_scope
from hub.models import Reply, ReplyState
from hub.storage import replies as store


def _reply(engine: Engine, state: ReplyState) -> int:
    with session_scope(engine) as s:
        reply = Reply(channel="telegram", source="shopbot", text="Да", state=state.value)
        s.add(reply)
        s.flush()
        assert reply.id is not None
        return reply.id


def test_a_late_doubt_leaves_a_recorded_delivery_alone(engine: Engine) -> None:
    reply_id = _reply(engine, ReplyState.sent)
    with session_scope(engine) as s:
        changed = store.set_state(
            s, reply_id, ReplyState.uncertain, error="interrupted", unless=ReplyState.sent
        )
    assert changed is False
    with session_scope(engine, read_only=True) as s:
        reply = s.get(Reply, reply_id)
        assert reply is not None and (reply.state, reply.last_error) == ("sent", None)


def test_a_reply_still_sending_becomes_uncertain(engine: Engine) -> None:
    reply_id = _reply(engine, ReplyState.sending)
    with session_scope(engine) as s:
        assert store.set_state(
            s, reply_id, ReplyState.uncertain, error="interrupted", unless=ReplyState.sent
        )
    with session_scope(engine, read_only=True) as s:
        reply = s.get(Reply, reply_id)
        assert reply is not None and reply.state == "uncertain"
