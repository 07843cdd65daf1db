"""Warden SDK: ask Warden before an agent acts, wait for a human, report the result."""

from warden_sdk._base import __version__
from warden_sdk.aio import AsyncGuard, AsyncWarden
from warden_sdk.client import Guard, Warden
from warden_sdk.codes import ERROR_CODES
from warden_sdk.errors import (
    ApprovalTimeout,
    Denied,
    Expired,
    NotAllowed,
    RateLimited,
    WardenError,
)
from warden_sdk.models import (
    Action,
    Allowed,
    AskResult,
    Authorisation,
    Identity,
    Pending,
    Tool,
    ToolCall,
)

__all__ = [
    "ERROR_CODES",
    "Action",
    "Allowed",
    "ApprovalTimeout",
    "AskResult",
    "AsyncGuard",
    "AsyncWarden",
    "Authorisation",
    "Denied",
    "Expired",
    "Guard",
    "Identity",
    "NotAllowed",
    "Pending",
    "RateLimited",
    "Tool",
    "ToolCall",
    "Warden",
    "WardenError",
    "__version__",
]
