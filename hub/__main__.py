"""`python -m hub` is the `clienthub` command."""

from hub.cli import app

app(prog_name="clienthub")
