"""SQLModel tables, one module per aggregate. Import from here so Alembic sees every table."""

from hub.models.appeal import Appeal, AppealState, DeliveryState
from hub.models.audit import AuditEntry
from hub.models.bitrix24 import CrmLink, PortalToken, RateBucket
from hub.models.call import RecordingState, TelephonyCall
from hub.models.dashboard import DailyRollup
from hub.models.job import Job, JobState
from hub.models.poller import PollerCursor
from hub.models.raw_event import RawEvent, RawEventState
from hub.models.rejected import RejectedRequest
from hub.models.reply import ConnectorLine, OpenLineChat, Reply, ReplyOrigin, ReplyState
from hub.models.ruleset import PoolCursor, RuleSetState, RuleSetVersion
from hub.models.source import ChannelSource
from hub.models.stored_file import StoredFile
from hub.models.user import LoginAttempt, Role, SsoTicket, User, UserSession

__all__ = [
    "Appeal",
    "AppealState",
    "AuditEntry",
    "ChannelSource",
    "ConnectorLine",
    "CrmLink",
    "DailyRollup",
    "DeliveryState",
    "Job",
    "JobState",
    "LoginAttempt",
    "OpenLineChat",
    "PollerCursor",
    "PoolCursor",
    "PortalToken",
    "RateBucket",
    "RawEvent",
    "RawEventState",
    "RecordingState",
    "RejectedRequest",
    "Reply",
    "ReplyOrigin",
    "ReplyState",
    "Role",
    "RuleSetState",
    "RuleSetVersion",
    "SsoTicket",
    "StoredFile",
    "TelephonyCall",
    "User",
    "UserSession",
]
