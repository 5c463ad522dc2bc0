"""ui: single sign-on from the Bitrix24 portal (one-time tickets, one account per portal user)

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23 12:15:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel  # noqa: F401

import hub.models.types  # noqa: F401
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "ui_sso_tickets",
        sa.Column("token_hash", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("bitrix_user_id", sa.Integer(), nullable=False),
        sa.Column("created_at", hub.models.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("expires_at", hub.models.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["ui_users.id"]),
        sa.PrimaryKeyConstraint("token_hash"),
    )
    with op.batch_alter_table("ui_sso_tickets", schema=None) as batch_op:
        batch_op.create_index("ix_ui_sso_tickets_user", ["user_id"], unique=False)
    # bitrix_user_id has been unused until now (all NULL), so the unique index cannot fail.
    with op.batch_alter_table("ui_users", schema=None) as batch_op:
        batch_op.create_index("uq_ui_users_bitrix_user", ["bitrix_user_id"], unique=True)


def downgrade() -> None:
    with op.batch_alter_table("ui_users", schema=None) as batch_op:
        batch_op.drop_index("uq_ui_users_bitrix_user")
    with op.batch_alter_table("ui_sso_tickets", schema=None) as batch_op:
        batch_op.drop_index("ix_ui_sso_tickets_user")
    op.drop_table("ui_sso_tickets")
