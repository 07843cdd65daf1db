"""The gateway side of the governed operations (approvals.governance): creating a
connector, pointing it at another URL and adding or replacing its credential headers.
Registered with the guard and the door from GatewayConfig.ready().

A proposal carries new header values only as a Fernet token (gateway.crypto) under
`values["sealed_headers"]`; people (summaries, the review page, the audit trail's diff)
see header names. The registry's predicate compares `_header_fingerprints`: keyed
digests of the values computed in memory (salted HMAC with SECRET_KEY), which the door
never stores or shows. The confirmation token is bound to the proposal with the sealed
token replaced by `headers_digest`, an HMAC with the server pepper of the plaintext
values (`bound_values`): the ciphertext differs on every encryption, the digest does
not, so the proposer's confirmed re-call with the same headers collects the applied
result (once) and one with other headers is a mismatch. Deleting a connector, disabling
it or dropping headers narrows what Warden can do and applies at once."""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

from django.utils.crypto import salted_hmac
from django.views.decorators.debug import sensitive_variables

from approvals import door, guard
from approvals.door import Proposal
from approvals.governance import Target
from common.actor import Actor
from common.secrets import pepper
from gateway import credentials, crypto, services
from gateway.models import Connector
from tenants.models import Workspace

SEALED = "sealed_headers"
BOUND = "headers_digest"
_FINGERPRINT_SALT = "warden.gateway.connector-header"
_BINDING_CONTEXT = b"warden.gateway.proposal-headers\0"


@sensitive_variables("headers", "value")
def fingerprints(headers: dict[str, str]) -> dict[str, str]:
    """{name: keyed digest of the value}: tells values apart without revealing them."""
    return {
        name: salted_hmac(_FINGERPRINT_SALT, f"{name}\0{value}", algorithm="sha256").hexdigest()
        for name, value in headers.items()
    }


@sensitive_variables("headers")
def headers_digest(headers: dict[str, str]) -> str:
    """A keyed digest (HMAC-SHA-256 with the server pepper) of the header values as a
    whole, order-free: what a confirmation binds in place of their ciphertext."""
    canonical = json.dumps(headers, sort_keys=True, separators=(",", ":")).encode()
    return hmac.new(pepper(), _BINDING_CONTEXT + canonical, hashlib.sha256).hexdigest()


def _bound(values: dict[str, Any], headers: dict[str, str] | None) -> dict[str, Any]:
    bound = {k: v for k, v in values.items() if k != SEALED}
    if headers is not None:
        bound[BOUND] = headers_digest(headers)
    return bound


def _public(connector: Connector) -> dict[str, Any]:
    return {
        "name": connector.name,
        "kind": connector.kind,
        "url": connector.url,
        "header_names": sorted(connector.header_names or []),
        "declared_tools": [t.get("name") for t in connector.declared_tools or []],
        "enabled": connector.enabled,
    }


@sensitive_variables("headers")
def references(headers: dict[str, str]) -> dict[str, str]:
    """{header: the credential reference it names}: what an approver must see to know
    whose secret would be sent (never a value; literals say so)."""
    return {name: credentials.describe(value) for name, value in sorted(headers.items())}


def guard_snapshot(connector: Connector) -> dict[str, Any]:
    """What the guard compares for a stored or about-to-be-saved connector."""
    try:
        stored = services.stored_headers(connector)
    except crypto.SecretUnreadable:
        stored = {name: "(unreadable)" for name in connector.header_names or []}
    return {
        **_public(connector),
        "credential_references": references(stored),
        "_header_fingerprints": fingerprints(stored),
    }


@sensitive_variables("headers")
def _seal(headers: dict[str, str]) -> str:
    return crypto.encrypt(json.dumps(headers)) if headers else ""


@sensitive_variables("sealed")
def _unseal(sealed: str) -> dict[str, str]:
    return json.loads(crypto.decrypt(sealed)) if sealed else {}


@sensitive_variables("fields", "headers")
def connector_create(
    workspace: Workspace, fields: dict[str, Any], *, recall: bool = False
) -> Proposal:
    """A new connector (always governed). Validates first: bad input never reaches an
    approver. `recall`: the proposer's confirmed re-call, which finds the connector
    its approval created (so its name is not refused as taken)."""
    clean = services.connector_create_check(workspace=workspace, **fields, taken_ok=recall)
    headers = clean.pop("headers")
    draft = Connector(workspace=workspace, header_names=sorted(headers), **clean)
    after = {
        **_public(draft),
        "credential_references": references(headers),
        "_header_fingerprints": fingerprints(headers),
    }
    values = {**clean, SEALED: _seal(headers)}
    return Proposal(
        Target.CONNECTOR,
        "create",
        f"connector {clean['name']}",
        None,
        after,
        None,
        values,
        bound_values=_bound(values, headers),
    )


@sensitive_variables("changes", "clean", "headers", "stored")
def connector_update(connector: Connector, changes: dict[str, Any]) -> Proposal:
    """A change of URL, headers (replaced as a whole), declared tools or enabled.
    `new_credentials` names the headers whose values the change adds or replaces."""
    clean = services.connector_update_check(connector=connector, changes=changes)
    before = guard_snapshot(connector)
    draft = Connector(
        **{f.attname: getattr(connector, f.attname) for f in Connector._meta.concrete_fields}
    )
    values = {k: v for k, v in clean.items() if k != "headers"}
    for name, value in values.items():
        setattr(draft, name, value)
    after = {
        **_public(draft),
        "credential_references": before["credential_references"],
        "_header_fingerprints": before["_header_fingerprints"],
    }
    if "headers" in clean:
        headers = clean["headers"]
        draft.header_names = sorted(headers)
        new_prints = fingerprints(headers)
        was = before["_header_fingerprints"]
        after = {
            **_public(draft),
            "credential_references": references(headers),
            "_header_fingerprints": new_prints,
            "new_credentials": sorted(n for n, d in new_prints.items() if was.get(n) != d),
        }
        values[SEALED] = _seal(headers)
    return Proposal(
        Target.CONNECTOR,
        "update",
        f"connector {connector.name}",
        before,
        after,
        str(connector.pk),
        values,
        bound_values=_bound(values, clean.get("headers")),
    )


@sensitive_variables("values", "fields")
def _create(*, workspace: Workspace, actor: Actor, values: dict, reason: str, **_) -> Connector:
    fields = dict(values)
    headers = _unseal(fields.pop(SEALED, ""))
    return services.connector_create(
        workspace=workspace, actor=actor, headers=headers, reason=reason, **fields
    )


@sensitive_variables("values", "changes")
def _update(*, workspace: Workspace, actor: Actor, target_id, values: dict, reason: str, **_):
    connector = Connector.objects.get(workspace=workspace, pk=target_id)
    changes = dict(values)
    if SEALED in changes:
        changes["headers"] = _unseal(changes.pop(SEALED))
    return services.connector_update(
        connector=connector, actor=actor, changes=changes, reason=reason
    )


def register() -> None:
    guard.register(Connector, Target.CONNECTOR, guard_snapshot)
    door.register_applier(Target.CONNECTOR, "create", _create)
    door.register_applier(Target.CONNECTOR, "update", _update)
    door.register_reader(
        Target.CONNECTOR, lambda ws, pk: Connector.objects.filter(workspace=ws, pk=pk).first()
    )
