"""Roles become guardian group permissions: one group per (workspace, role) holding
the role's object permissions on its workspace, each member placed in their role's
group, and the per-member permission copies removed."""

from django.db import migrations

# Frozen copy of tenants.models.ROLE_PERMISSIONS as of this migration.
ROLE_PERMISSIONS = {
    "owner": (
        "manage_workspace",
        "manage_members",
        "manage_keys",
        "manage_tools",
        "approve_actions",
        "view_audit",
        "download_privacy_summary",
    ),
    "admin": (
        "manage_members",
        "manage_keys",
        "manage_tools",
        "approve_actions",
        "view_audit",
        "download_privacy_summary",
    ),
    "approver": ("approve_actions",),
    "auditor": ("view_audit", "download_privacy_summary"),
    "member": (),
}


# Frozen copy of Workspace.Meta.permissions (created here if post_migrate never ran).
PERMISSION_NAMES = {
    "manage_workspace": "Manage workspace settings",
    "manage_members": "Manage members",
    "manage_keys": "Manage machine keys",
    "manage_tools": "Manage the tool catalog",
    "approve_actions": "Approve or deny agent actions",
    "view_audit": "View audit evidence",
    "download_privacy_summary": "Download the privacy summary",
}


def _group_name(workspace_id, role):
    return f"workspace:{workspace_id}:{role}"


def _workspace_permissions(apps):
    ContentType = apps.get_model("contenttypes", "ContentType")
    Permission = apps.get_model("auth", "Permission")
    ctype, _ = ContentType.objects.get_or_create(app_label="tenants", model="workspace")
    return {
        codename: Permission.objects.get_or_create(
            content_type=ctype, codename=codename, defaults={"name": name}
        )[0]
        for codename, name in PERMISSION_NAMES.items()
    }


def to_role_groups(apps, schema_editor):
    Workspace = apps.get_model("tenants", "Workspace")
    Membership = apps.get_model("tenants", "Membership")
    Group = apps.get_model("auth", "Group")
    GroupPerm = apps.get_model("tenants", "WorkspaceGroupObjectPermission")
    UserPerm = apps.get_model("tenants", "WorkspaceUserObjectPermission")
    User = Membership._meta.get_field("user").related_model
    if not Workspace.objects.exists():
        return
    permissions = _workspace_permissions(apps)
    for workspace in Workspace.objects.all().iterator():
        for role, codenames in ROLE_PERMISSIONS.items():
            group, _ = Group.objects.get_or_create(name=_group_name(workspace.pk, role))
            for codename in codenames:
                GroupPerm.objects.get_or_create(
                    group=group, permission=permissions[codename], content_object=workspace
                )
    for membership in Membership.objects.all().iterator():
        group = Group.objects.get(name=_group_name(membership.workspace_id, membership.role))
        User.groups.through.objects.get_or_create(user_id=membership.user_id, group_id=group.pk)
    UserPerm.objects.filter(permission__codename__in=permissions).delete()


def to_user_permissions(apps, schema_editor):
    Membership = apps.get_model("tenants", "Membership")
    Group = apps.get_model("auth", "Group")
    UserPerm = apps.get_model("tenants", "WorkspaceUserObjectPermission")
    if not Membership.objects.exists():
        Group.objects.filter(name__startswith="workspace:").delete()
        return
    permissions = _workspace_permissions(apps)
    for membership in Membership.objects.all().iterator():
        for codename in ROLE_PERMISSIONS[membership.role]:
            UserPerm.objects.get_or_create(
                user_id=membership.user_id,
                permission=permissions[codename],
                content_object_id=membership.workspace_id,
            )
    Group.objects.filter(name__startswith="workspace:").delete()


class Migration(migrations.Migration):
    dependencies = [
        ("tenants", "0004_plain_copy_retention"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [migrations.RunPython(to_role_groups, to_user_permissions)]
