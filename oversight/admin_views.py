"""The posture page in the admin: `/admin/posture/` (one workspace: straight to it), and
its shadow-rules page: `/admin/posture/<slug>/shadow/`. The privacy summary's pages:
`/admin/audit/auditentry/privacy-summary/` (their address from before they moved here),
`<slug>/` and `<slug>/pdf/` (each PDF download is audited), for `download_privacy_summary`.

Readable by members holding `view_audit` in the workspace (owner, admin, auditor), the
permission behind the API's `audit:read`; a workspace the viewer holds no such role in
answers 404, as if it did not exist."""

from __future__ import annotations

from datetime import datetime

from django.contrib import admin
from django.http import HttpResponse, HttpResponseNotAllowed, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import reverse

from approvals.shadow import shadow_report
from common.actor import Actor
from common.scopes import AUDIT_READ, PRIVACY_DOWNLOAD, SCOPE_PERMISSION
from oversight.posture import WEIGHTS, posture_build
from oversight.posture_pdf import posture_page
from oversight.privacy import privacy_summary_build, privacy_summary_download
from oversight.privacy_pdf import privacy_summary_pdf
from tenants.admin_base import permission_missing
from tenants.selectors import workspaces_with_permission

# The permission behind the API's audit:read, from the one scope table.
VIEW_PERMISSION = SCOPE_PERMISSION[AUDIT_READ]
DOWNLOAD_PRIVACY_SUMMARY = SCOPE_PERMISSION[PRIVACY_DOWNLOAD]


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


# --- the privacy summary ------------------------------------------------------------------


def _privacy_permitted(request):
    return workspaces_with_permission(user=request.user, perm=DOWNLOAD_PRIVACY_SUMMARY)


def _privacy_workspace(request, slug: str):
    if not _privacy_permitted(request).exists():
        raise permission_missing(DOWNLOAD_PRIVACY_SUMMARY)
    return get_object_or_404(_privacy_permitted(request), slug=slug)


def privacy_index_view(request):
    workspaces = list(_privacy_permitted(request))
    if not workspaces:
        raise permission_missing(DOWNLOAD_PRIVACY_SUMMARY)
    if len(workspaces) == 1:
        return HttpResponseRedirect(reverse("privacy_summary_workspace", args=[workspaces[0].slug]))
    context = {
        **admin.site.each_context(request),
        "title": "Privacy summaries",
        "workspaces": workspaces,
    }
    return TemplateResponse(request, "admin/oversight/privacy_index.html", context)


def privacy_summary_view(request, slug: str):
    workspace = _privacy_workspace(request, slug)
    summary = privacy_summary_build(workspace=workspace)
    context = {
        **admin.site.each_context(request),
        "title": f"Privacy summary: {workspace.name}",
        "workspace": workspace,
        "summary": summary,
    }
    return TemplateResponse(request, "admin/oversight/privacy_summary.html", context)


def privacy_pdf_view(request, slug: str):
    if request.method != "GET":
        return HttpResponseNotAllowed(["GET"])
    workspace = _privacy_workspace(request, slug)
    summary = privacy_summary_download(
        workspace=workspace, actor=Actor.for_request(request), fmt="pdf"
    )
    posture = posture_build(
        workspace=workspace, now=datetime.fromisoformat(summary["generated_at"])
    )
    response = HttpResponse(
        privacy_summary_pdf(summary, extra_pages=[posture_page(posture)]),
        content_type="application/pdf",
    )
    filename = f"warden-privacy-summary-{workspace.slug}.pdf"
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    response["Cache-Control"] = "no-store"
    return response
