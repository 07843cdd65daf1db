"""A small in-memory Warden behind httpx.MockTransport, for the SDK's unit tests."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from typing import Any

import httpx


@dataclass
class FakeClock:
    now: float = 1000.0
    sleeps: list[float] = field(default_factory=list)

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds

    async def asleep(self, seconds: float) -> None:
        self.sleep(seconds)


def error(status: int, code: str, headers: dict | None = None) -> httpx.Response:
    body = {"error": {"code": code, "message": code.replace("_", " "), "detail": {}}}
    return httpx.Response(status, json=body, headers=headers)


class FakeWarden:
    """Tools are `allow`, `confirm` or an error code. A pending action is decided by
    `decide(action_id, verdict, reason)` or after `decide_after_polls` long-polls."""

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.tools: dict[str, str] = {}
        self.actions: dict[str, dict[str, Any]] = {}
        self.requests: list[httpx.Request] = []
        self.dry_run = False
        self.throttle_next = 0
        self.retry_after = "2"
        self.unavailable_next = 0
        self.scripted: tuple[str, str, int] | None = None  # verdict, reason, after polls
        self.polls = 0
        self.hold_long_polls = True  # False: answer pending at once (past expiry)
        self.replies: dict[str, httpx.Response] = {}  # idempotency key -> first answer
        self.executed: list[tuple[str, dict]] = []  # calls the "gateway" ran

    # --- test helpers ----------------------------------------------------------------

    def decide(self, action_id: str, verdict: str, reason: str = "ok") -> None:
        action = self.actions[action_id]
        action["status"] = {"approve": "approved", "deny": "denied", "expire": "expired"}[verdict]
        if verdict != "expire":
            action["decided_by"].append("user:approver@example.test")
        if verdict == "deny":
            action["denial_reason"] = reason

    def sent(self, method: str, path: str) -> list[dict]:
        return [
            json.loads(r.content or b"null")
            for r in self.requests
            if r.method == method and r.url.path == path
        ]

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle)

    def async_transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle)

    # --- the API ---------------------------------------------------------------------

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if request.headers.get("Authorization") != "Bearer wdn_test_key":
            return error(401, "invalid_key")
        if self.throttle_next:
            self.throttle_next -= 1
            return error(429, "rate_limited", {"Retry-After": self.retry_after})
        if self.unavailable_next:
            self.unavailable_next -= 1
            return error(503, "unavailable", {"Retry-After": "1"})
        path = request.url.path.removeprefix("/api/v1/")
        if path == "whoami":
            return httpx.Response(
                200,
                json={
                    "workspace": {"slug": "acme"},
                    "mode": "dry_run" if self.dry_run else "live",
                    "dry_run": self.dry_run,
                    "writes_enabled": True,
                    "principal": "key",
                    "key": {"id": "k1"},
                    "scopes": ["actions:read"],
                },
            )
        if path == "tools":
            return httpx.Response(
                200,
                json={
                    "results": [
                        {
                            "id": "t1",
                            "name": name,
                            "description": "",
                            "level": "read",
                            "data_classes": [],
                            "irreversible": False,
                            "confirmation": "always" if rule == "confirm" else "never",
                        }
                        for name, rule in self.tools.items()
                    ]
                },
            )
        if path == "actions" and request.method == "POST":
            return self._ask(json.loads(request.content))
        if path.startswith("actions/") and path.endswith("/result"):
            return self._result(path.split("/")[1], json.loads(request.content))
        if path.startswith("actions/"):
            return self._get(path.split("/")[1], int(request.url.params.get("wait", "0")))
        return error(404, "not_found")

    def _view(self, action: dict) -> dict:
        return {
            "id": action["id"],
            "tool": action["tool"],
            "status": action["status"],
            "decision": action["decision"],
            "denial_code": "",
            "dry_run": self.dry_run,
            "denial_reason": action["denial_reason"],
            "decided_by": action["decided_by"],
            "confirmation": {"expires_at": "2030-01-01T00:00:00Z"} if action["token"] else None,
        }

    def _ask(self, body: dict) -> httpx.Response:
        rule = self.tools.get(body["tool"], "tool_not_allowed")
        if body.get("confirmed"):
            found = [a for a in self.actions.values() if a["token"] == body["confirmation_token"]]
            if not found or found[0]["params"] != body["params"]:
                return error(403, "confirmation_mismatch")
            action = found[0]
            status = action["status"]
            if status == "pending":
                return error(409, "confirmation_pending")
            if status == "denied":
                return error(403, "confirmation_denied")
            if status == "expired":
                return error(410, "confirmation_expired")
            if status != "approved":
                return error(409, "confirmation_used")
            action["status"] = "allowed"
            return httpx.Response(200, json=self._allowed(action, body))
        key = body.get("idempotency_key")
        if key and key in self.replies:
            first = self.replies[key]
            return httpx.Response(first.status_code, json=first.json())
        reply = self._first_ask(body, rule)
        if key:
            self.replies[key] = reply
        return reply

    def _allowed(self, action: dict, body: dict) -> dict:
        answer = {"id": action["id"], "decision": "allowed", "dry_run": self.dry_run}
        if body.get("execute"):  # Warden's gateway ran the tool: the upstream's answer
            self.executed.append((body["tool"], body["params"]))
            answer["result"] = None if self.dry_run else {"echo": body["params"]}
            answer["execution"] = {"status": "skipped" if self.dry_run else "succeeded"}
        return answer

    def _first_ask(self, body: dict, rule: str) -> httpx.Response:
        if rule not in ("allow", "confirm"):
            return error(403, rule)
        action = {
            "id": str(uuid.uuid4()),
            "tool": body["tool"],
            "params": body["params"],
            "status": "allowed" if rule == "allow" else "pending",
            "decision": "allowed" if rule == "allow" else "requires_confirmation",
            "token": "ct_" + uuid.uuid4().hex if rule == "confirm" else None,
            "denial_reason": None,
            "decided_by": [],
            "result": None,
        }
        self.actions[action["id"]] = action
        if rule == "allow":
            return httpx.Response(200, json=self._allowed(action, body))
        return httpx.Response(
            202,
            json={
                "id": action["id"],
                "decision": "requires_confirmation",
                "requires_confirmation": True,
                "confirmation_token": action["token"],
                "summary": f"Run {body['tool']}",
                "irreversible": False,
                "expires_at": "2030-01-01T00:00:00Z",
            },
        )

    def _get(self, action_id: str, wait: int) -> httpx.Response:
        action = self.actions.get(action_id)
        if action is None:
            return error(404, "not_found")
        if wait and action["status"] == "pending":
            self.polls += 1
            if self.scripted and self.polls >= self.scripted[2]:
                self.decide(action_id, self.scripted[0], self.scripted[1])
            elif self.hold_long_polls:
                self.clock.now += wait  # the server held the request for `wait` seconds
        return httpx.Response(200, json=self._view(action))

    def _result(self, action_id: str, body: dict) -> httpx.Response:
        action = self.actions.get(action_id)
        if action is None:
            return error(404, "not_found")
        if action["status"] != "allowed":
            return error(409, "conflict")
        action["result"] = body
        action["status"] = {
            "succeeded": "simulated" if self.dry_run else "executed",
            "failed": "failed",
        }[body["status"]]
        return httpx.Response(200, json=self._view(action))
