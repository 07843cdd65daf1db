"""Scopes are data: `<resource>:<verb>` strings. `workspace:admin` implies all."""

ACTIONS_READ = "actions:read"
ACTIONS_WRITE = "actions:write"
ACTIONS_EXTERNAL = "actions:external"
KEYS_READ = "keys:read"
KEYS_WRITE = "keys:write"
MEMBERS_WRITE = "members:write"
TOOLS_WRITE = "tools:write"
AUDIT_READ = "audit:read"
CONNECTORS_READ = "connectors:read"
CONNECTORS_WRITE = "connectors:write"
WORKSPACE_ADMIN = "workspace:admin"
# Human-only scopes: work no key may do (deciding approvals, downloading the privacy
# summary). They are in the table so the API and the admin read one mapping, and not in
# ALL_SCOPES, so no key can be given them (clean_scopes refuses unknown scopes).
APPROVALS_DECIDE = "approvals:decide"
PRIVACY_DOWNLOAD = "privacy:download"

ALL_SCOPES: frozenset[str] = frozenset(
    {
        ACTIONS_READ,
        ACTIONS_WRITE,
        ACTIONS_EXTERNAL,
        KEYS_READ,
        KEYS_WRITE,
        MEMBERS_WRITE,
        TOOLS_WRITE,
        AUDIT_READ,
        CONNECTORS_READ,
        CONNECTORS_WRITE,
        WORKSPACE_ADMIN,
    }
)

# The guardian permission on the workspace that lets a *human* session use an
# endpoint guarded by the scope. `None`: humans never act through that scope
# (agents' actions are machine-only). The one scope-to-permission table: the API's
# ScopeTablePermission and the admin's base (tenants.admin_base) both read it.
SCOPE_PERMISSION: dict[str, str | None] = {
    ACTIONS_READ: None,
    ACTIONS_WRITE: None,
    ACTIONS_EXTERNAL: None,
    KEYS_READ: "manage_keys",
    KEYS_WRITE: "manage_keys",
    MEMBERS_WRITE: "manage_members",
    TOOLS_WRITE: "manage_tools",
    AUDIT_READ: "view_audit",
    CONNECTORS_READ: "manage_tools",
    CONNECTORS_WRITE: "manage_tools",
    WORKSPACE_ADMIN: "manage_workspace",
    APPROVALS_DECIDE: "approve_actions",
    PRIVACY_DOWNLOAD: "download_privacy_summary",
}


def unknown_scopes(scopes) -> list[str]:
    return sorted(s for s in scopes if s not in ALL_SCOPES)


def has_scope(held, needed: str) -> bool:
    held = set(held or ())
    return needed in held or WORKSPACE_ADMIN in held


def scope_for_level(level: str) -> str:
    return f"actions:{level}"
