"""Attachment links on evidence objects: a URL plus the SHA-256 of what it points at.

Warden stores the link, never the document: the digest lets anyone check later that
the document behind the URL is the one that was attached. Only https links are
accepted, without user names, passwords or credential-shaped values in them (a
pre-signed URL is a secret), and only to an object of the caller's own workspace."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from django.db import models, transaction

from audit.events import EVENTS
from audit.models import AuditAction, EvidenceAttachment
from audit.services import audit_record
from common.actor import Actor
from common.credentials import credential_type
from common.errors import WardenError

if TYPE_CHECKING:
    from tenants.models import Workspace

MAX_URL_CHARS = 2000
MAX_TITLE_CHARS = 200
MAX_PER_OBJECT = 50
SHA256_HEX = re.compile(r"[0-9a-f]{64}")
_CONTROL = re.compile(r"[\x00-\x20\x7f]")
_LINE_BREAKING = re.compile(r"[\x00-\x1f\x7f]")
# Evidence models by their model name (the service names no app above audit).
TARGET_TYPES = {
    "approvalrecord": EvidenceAttachment.Target.APPROVAL_RECORD,
    "exceptionrecord": EvidenceAttachment.Target.EXCEPTION_RECORD,
    "versionlog": EvidenceAttachment.Target.VERSION_LOG,
}


def _invalid(field: str, message: str) -> WardenError:
    return WardenError("validation_error", message, {field: [message]})


def clean_url(url) -> str:
    if not isinstance(url, str) or not url or len(url) > MAX_URL_CHARS:
        raise _invalid("url", f"An https URL of at most {MAX_URL_CHARS} characters.")
    if _CONTROL.search(url):
        raise _invalid("url", "The URL may not contain spaces or control characters.")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises on a malformed port
    except ValueError as exc:
        raise _invalid("url", "Not a valid URL.") from exc
    if parts.scheme.lower() != "https" or not parts.hostname:
        raise _invalid("url", "Only https URLs with a host are accepted.")
    if parts.username is not None or parts.password is not None:
        raise _invalid("url", "The URL may not carry a user name or password.")
    if credential_type(url) is not None:
        raise _invalid(
            "url", "The URL looks like it carries a credential; link to an address without one."
        )
    return url


def clean_sha256(value) -> str:
    """64 hexadecimal characters, optionally prefixed `sha256:`; stored lowercase."""
    text = value.strip().lower() if isinstance(value, str) else ""
    if text.startswith("sha256:"):
        text = text[len("sha256:") :]
    if not SHA256_HEX.fullmatch(text):
        raise _invalid("sha256", "The SHA-256 of the document: 64 hexadecimal characters.")
    return text


def target_type_of(target: models.Model) -> str:
    try:
        return TARGET_TYPES[target._meta.model_name]
    except KeyError as exc:
        raise WardenError("not_found", "Not found.") from exc


def attachment_add(
    *,
    workspace: Workspace,
    target: models.Model,
    url,
    sha256,
    title="",
    actor: Actor,
) -> EvidenceAttachment:
    """Attach a link to an evidence object of `workspace`, with its audit entry."""
    target_type = target_type_of(target)
    if target.workspace_id != workspace.pk:
        raise WardenError("not_found", "Not found.")  # another workspace's: as if absent
    url = clean_url(url)
    sha256 = clean_sha256(sha256)
    if not isinstance(title, str) or len(title) > MAX_TITLE_CHARS or _LINE_BREAKING.search(title):
        raise _invalid("title", f"One line of at most {MAX_TITLE_CHARS} characters.")
    with transaction.atomic():
        existing = EvidenceAttachment.objects.filter(
            workspace=workspace, target_type=target_type, target_id=str(target.pk)
        )
        if existing.count() >= MAX_PER_OBJECT:
            raise _invalid("url", f"At most {MAX_PER_OBJECT} attachments per object.")
        attachment = EvidenceAttachment(
            workspace=workspace,
            target_type=target_type,
            target_id=str(target.pk),
            url=url,
            sha256=sha256,
            title=title.strip(),
            added_by=actor.label,
        )
        attachment.save()
        event = EVENTS[AuditAction.ATTACHMENT_ADDED].event(
            target_type=target_type,
            target_id=target.pk,
            input={
                "attachment": attachment.pk,
                "url": url,
                "sha256": sha256,
                "title": attachment.title,
            },
            outcome="attached",
        )
        audit_record(event, workspace=workspace, actor=actor)
    return attachment
