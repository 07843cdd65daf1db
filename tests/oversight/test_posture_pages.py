"""The posture page in the admin and in the privacy summary PDF."""

import io
import re

import pdfplumber
import pytest
from django.test import Client

from approvals.guard import operator_seeding
from common.actor import Actor
from oversight.posture import posture_build
from oversight.posture_pdf import posture_page
from oversight.privacy import privacy_summary_build
from oversight.privacy_pdf import privacy_summary_pdf
from tenants.models import Role
from tenants.services import membership_add
from tests.oversight.test_privacy_pdf import MARGIN, SLACK

PAGE = "/admin/posture/open/"


def _client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def auditor(permissive, make_member):
    return make_member(permissive, Role.AUDITOR)


def test_the_admin_home_links_to_posture_for_those_who_may_see_it(permissive, auditor, make_member):
    html = _client(auditor).get("/admin/").content.decode()
    assert '<a href="/admin/posture/" id="posture-link">' in html
    approver = make_member(permissive, Role.APPROVER)
    assert 'id="posture-link"' not in _client(approver).get("/admin/").content.decode()


def test_one_workspace_goes_straight_to_its_page(permissive, auditor):
    response = _client(auditor).get("/admin/posture/")
    assert response.status_code == 302 and response["Location"] == PAGE


def test_several_workspaces_are_listed(permissive, locked_down, auditor):
    with operator_seeding():
        membership_add(
            reason="test set-up",
            workspace=locked_down,
            user=auditor,
            role=Role.AUDITOR,
            actor=Actor.system("tests"),
        )
    html = _client(auditor).get("/admin/posture/").content.decode()
    assert 'href="/admin/posture/open/"' in html and 'href="/admin/posture/locked/"' in html


def test_the_page_shows_decision_score_axes_and_linked_mitigations(permissive, auditor):
    response = _client(auditor).get(PAGE)
    assert response.status_code == 200
    html = response.content.decode()
    assert 'data-score="82"' in html and 'data-decision="deny"' in html
    assert "Data sensitivity" in html and "Autonomy" in html
    for mitigation in posture_build(workspace=permissive)["mitigations"]:
        assert f'data-code="{mitigation["code"]}"' in html
        assert f'href="{mitigation["admin_url"]}"' in html
    assert "night-bot" in html and "vault.read" in html


def test_a_locked_down_workspace_has_nothing_left_to_tighten(locked_down, make_member):
    auditor = make_member(locked_down, Role.AUDITOR)
    html = _client(auditor).get("/admin/posture/locked/").content.decode()
    assert 'data-decision="allow"' in html and 'id="posture-no-mitigations"' in html


@pytest.mark.parametrize("role", [Role.APPROVER, Role.MEMBER])
def test_roles_without_view_audit_get_the_admin_framed_refusal(permissive, make_member, role):
    user = make_member(permissive, role)
    response = _client(user).get(PAGE)
    if role == Role.MEMBER:  # no admin access at all: the login page
        assert response.status_code == 302
        return
    assert response.status_code == 403
    html = response.content.decode()
    assert "view_audit" in html and 'id="refusal-reason"' in html


def test_another_workspaces_auditor_gets_not_found(permissive, locked_down, make_member):
    stranger = make_member(locked_down, Role.AUDITOR)
    response = _client(stranger).get(PAGE)
    assert response.status_code == 404
    assert "email.send" not in response.content.decode()


def test_anonymous_visitors_are_sent_to_the_login(permissive):
    response = Client().get(PAGE)
    assert response.status_code == 302 and response["Location"].startswith("/admin/login/")


def test_hostile_names_are_inert_and_marked(permissive, auditor, add_tool):
    add_tool(permissive, "x<script>alert(1)</script>\u202eevil", data_classes=["pii"])
    html = _client(auditor).get(PAGE).content.decode()
    assert "<script>alert(1)" not in html
    assert "&lt;script&gt;" in html and "U+202E" in html


def test_the_page_costs_the_same_queries_for_a_bigger_workspace(
    permissive, auditor, add_tool, make_key, django_assert_max_num_queries
):
    client = _client(auditor)
    client.get(PAGE)
    with django_assert_max_num_queries(30) as small:
        client.get(PAGE)
    for i in range(25):
        add_tool(permissive, f"more.t{i}", level="write", data_classes=["pii"])
        make_key(permissive)
    with django_assert_max_num_queries(len(small.captured_queries)):
        assert client.get(PAGE).status_code == 200


# --- the privacy summary PDF ---------------------------------------------------------


def _pages(pdf_bytes):
    with pdfplumber.open(io.BytesIO(pdf_bytes)) as pdf:
        return [
            (page.width, page.height, page.extract_text_lines(return_chars=False))
            for page in pdf.pages
        ]


def test_the_downloaded_pdf_ends_with_the_posture_page(permissive, auditor):
    response = _client(auditor).get("/admin/audit/auditentry/privacy-summary/open/pdf/")
    assert response.status_code == 200
    pages = _pages(response.content)
    last = " ".join(line["text"] for line in pages[-1][2])
    assert last.startswith("Posture: data sensitivity x autonomy")
    assert "Policy decision: Deny. Risk score 82 of 100." in last
    assert "Turn unattended outbound off" in last
    earlier = " ".join(line["text"] for _w, _h, lines in pages[:-1] for line in lines)
    assert "Policy decision" not in earlier  # one page of its own, after the summary


def test_every_line_of_a_crowded_posture_page_is_inside_the_printable_area(
    permissive, add_tool, make_key
):
    for i in range(40):
        add_tool(
            permissive,
            f"very.long.tool.name.number.{i}.that.goes.on.and.on",
            level="external",
            data_classes=["pii", "financial", "regulated", "secrets"][: 1 + i % 4],
        )
    posture = posture_build(workspace=permissive)
    summary = privacy_summary_build(workspace=permissive)
    pdf = privacy_summary_pdf(summary, extra_pages=[posture_page(posture)])
    outside = [
        (n, round(line["x0"]), line["text"][:40])
        for n, (width, height, lines) in enumerate(_pages(pdf), start=1)
        for line in lines
        if not (
            line["x0"] >= MARGIN - SLACK
            and line["x1"] <= width - MARGIN + SLACK
            and line["top"] >= MARGIN - SLACK
            and line["bottom"] <= height - MARGIN + SLACK
        )
    ]
    assert outside == []
    text = " ".join(line["text"] for _w, _h, lines in _pages(pdf) for line in lines)
    assert re.search(r"and\s+29\s+more", text)  # 41 pii tools: 12 named, the rest counted
