"""Who is acting, as services see it. Views build it from the request; services
never read the request (DESIGN.md), so Celery tasks and commands can act too."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from common.net import client_ip

if TYPE_CHECKING:
    from keys.models import MachineKey


@dataclass(frozen=True)
class Actor:
    label: str  # "user:<email>", "key:<key id>" or "system:<name>"
    user: Any = None
    key: MachineKey | None = None
    request_id: str = ""
    client_ip: str | None = None
    # The channel a human acted through when it is not the admin or the API ("slack"):
    # decisions record it, so the evidence says where an approval was given.
    via: str = ""

    @property
    def kind(self) -> str:
        return self.label.split(":", 1)[0]

    @property
    def is_human(self) -> bool:
        return self.user is not None and self.key is None

    @classmethod
    def for_user(cls, user, *, request_id: str = "", client_ip: str | None = None) -> Actor:
        return cls(
            f"user:{user.email or user.get_username()}",
            user=user,
            request_id=request_id,
            client_ip=client_ip,
        )

    @classmethod
    def for_linked_user(cls, user, *, via: str, request_id: str = "") -> Actor:
        """The Warden user a signed third-party request speaks for (a Slack press from
        an account its owner linked in their own session), marked with the channel."""
        return dataclasses.replace(cls.for_user(user, request_id=request_id), via=via)

    @classmethod
    def for_key(cls, key, *, request_id: str = "", client_ip: str | None = None) -> Actor:
        return cls(f"key:{key.pk}", key=key, request_id=request_id, client_ip=client_ip)

    @classmethod
    def for_request(cls, request, *, key: Any = None) -> Actor:
        """The actor of an HTTP request (admin page, session or key API call): the key
        that authenticated it, else the logged-in person. The only request-to-Actor
        helper; API views read `request.actor` (set by the Principal) instead."""
        context = {
            "request_id": getattr(request, "request_id", ""),
            "client_ip": client_ip(request),
        }
        if key is not None:
            return cls.for_key(key, **context)
        return cls.for_user(request.user, **context)

    @classmethod
    def system(cls, name: str) -> Actor:
        return cls(f"system:{name}")
