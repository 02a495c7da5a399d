"""Slash-command grammar and help: pure functions over the command table, no Slack client."""
