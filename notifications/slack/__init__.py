"""Slack approvals (docs "Slack"): a confirmation request posts a Block Kit message
with Approve / Deny; a linked Slack user's press decides through the same approval
services as the admin queue."""
