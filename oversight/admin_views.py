"""The posture page in the admin: `/admin/posture/` (one workspace: straight to it), and
its shadow-rules page: `/admin/posture/<slug>/shadow/`.

Readable by members holding `view_audit` in the workspace (owner, admin, auditor), the
permission behind the API's `audit:read`; a workspace the viewer holds no such role in
answers 404, as if it did not exist."""

from __future__ import annotations

from django.contrib import admin
from django.http import HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import reverse

from approvals.shadow import shadow_report
from common.scopes import AUDIT_READ, SCOPE_PERMISSION
from oversight.posture import WEIGHTS, posture_build
from tenants.admin_base import permission_missing
from tenants.selectors import workspaces_with_permission

# The permission behind the API's audit:read, from the one scope table.
VIEW_PERMISSION = SCOPE_PERMISSION[AUDIT_READ]


def _permitted(request):
    return workspaces_with_permission(user=request.user, perm=VIEW_PERMISSION)


def posture_index_view(request):
    workspaces = list(_permitted(request))
    if not workspaces:
        raise permission_missing(VIEW_PERMISSION)
    if len(workspaces) == 1:
        return HttpResponseRedirect(reverse("posture_admin_workspace", args=[workspaces[0].slug]))
    context = {
        **admin.site.each_context(request),
        "title": "Posture",
        "workspaces": workspaces,
    }
    return TemplateResponse(request, "admin/oversight/posture_index.html", context)


def posture_view(request, slug: str):
    if not _permitted(request).exists():
        raise permission_missing(VIEW_PERMISSION)
    workspace = get_object_or_404(_permitted(request), slug=slug)
    context = {
        **admin.site.each_context(request),
        "title": f"Posture: {workspace.name}",
        "workspace": workspace,
        "posture": posture_build(workspace=workspace),
        "weights": WEIGHTS,
    }
    return TemplateResponse(request, "admin/oversight/posture.html", context)


def shadow_view(request, slug: str):
    """Where the workspace's shadow rules disagreed with the live decisions (30 days)."""
    if not _permitted(request).exists():
        raise permission_missing(VIEW_PERMISSION)
    workspace = get_object_or_404(_permitted(request), slug=slug)
    context = {
        **admin.site.each_context(request),
        "title": f"Shadow rules: {workspace.name}",
        "workspace": workspace,
        "report": shadow_report(workspace=workspace),
    }
    return TemplateResponse(request, "admin/oversight/shadow.html", context)
