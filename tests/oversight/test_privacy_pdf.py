"""The privacy-summary PDF as a reader sees it: every line inside the printable area,
every section's lead paragraph at the left margin, and page 1 as reviewed.

Text extraction alone cannot catch a paragraph drawn off the page (it still finds
the words), so these tests read positions (pdfplumber) and pixels (pdftoppm)."""

import io
import os
import shutil
import subprocess
from pathlib import Path

import pdfplumber
import pytest
from PIL import Image, ImageChops

from oversight.privacy import privacy_summary_build, privacy_summary_sections
from oversight.privacy_pdf import privacy_summary_pdf

MM = 72 / 25.4
MARGIN = 10 * MM  # fpdf2's default margins, all four sides
SLACK = 0.5  # points: glyph boxes may touch the margin
CELL_PADDING = 1 * MM  # fpdf2 starts text 1 mm inside a cell
REFERENCE = Path(__file__).parent / "reference" / "privacy_summary_page1.png"
ARTEFACTS = Path("test-output")
DPI = 60
# A changed pixel differs by more than this (0-255 grey levels) ...
PIXEL_THRESHOLD = 64
# ... and at most this share of pixels may change (antialiasing across poppler versions).
MAX_CHANGED_SHARE = 0.005


@pytest.fixture
def summary(make_workspace):
    """A summary with every varying value pinned (identity, time, figures, roles), so
    page 1 changes only when the layout or the wording does."""
    built = privacy_summary_build(workspace=make_workspace(slug="acme"))
    built["stored"]["counts"] = dict.fromkeys(built["stored"]["counts"], 7)
    built["stored"]["by_data_class"] = {
        "pii": {"tools": 2, "action_requests": 130},
        "financial": {"tools": 1, "action_requests": 12},
    }
    built["access"] = {
        "roles": [
            {
                "role": "owner",
                "label": "Owner",
                "members": 1,
                "permissions": [{"codename": "all", "description": "Everything"}],
            },
            {"role": "member", "label": "Member", "members": 3, "permissions": []},
        ],
        "keys_with_audit_read": 1,
    }
    built["workspace"] = {
        "id": "6f1c2a9e-0000-4000-8000-000000000001",
        "slug": "acme",
        "name": "Acme Support",
    }
    built["generated_at"] = "2026-01-15T09:30:00+00:00"
    built["audit_chain_head"] = {"seq": 42, "hash": "ab12" * 16}
    built["sections"] = privacy_summary_sections(built)
    return built


def _lines(pdf_bytes):
    with pdfplumber.open(io.BytesIO(pdf_bytes)) as pdf:
        for page in pdf.pages:
            for line in page.extract_text_lines(return_chars=False):
                yield page, line


def test_every_text_line_lies_inside_the_printable_area(summary):
    outside = []
    for page, line in _lines(privacy_summary_pdf(summary)):
        inside = (
            line["x0"] >= MARGIN - SLACK
            and line["x1"] <= page.width - MARGIN + SLACK
            and line["top"] >= MARGIN - SLACK
            and line["bottom"] <= page.height - MARGIN + SLACK
        )
        if not inside:
            outside.append((page.page_number, round(line["x0"]), line["text"][:40]))
    assert outside == []


def test_header_and_each_sections_lead_paragraph_start_at_the_left_margin(summary):
    starts = {line["text"][:30]: line["x0"] for _page, line in _lines(privacy_summary_pdf(summary))}
    leads = ["Workspace acme", *(s["paragraphs"][0][:12] for s in summary["sections"])]
    for lead in leads:
        found = [x0 for text, x0 in starts.items() if text.startswith(lead)]
        assert found, f"no line starts with {lead!r}"
        assert found[0] == pytest.approx(MARGIN + CELL_PADDING, abs=SLACK), lead


def test_the_same_summary_gives_the_same_bytes(summary):
    assert privacy_summary_pdf(summary) == privacy_summary_pdf(summary)


def test_hidden_characters_show_as_markers_in_the_pdf(summary):
    summary["workspace"]["name"] = "Acme\u202eevil"
    with pdfplumber.open(io.BytesIO(privacy_summary_pdf(summary))) as pdf:
        text = pdf.pages[0].extract_text()
    assert "Acme[U+202E]evil" in text


def _render_page_one(pdf_bytes: bytes, tmp_path: Path) -> Image.Image:
    source = tmp_path / "summary.pdf"
    source.write_bytes(pdf_bytes)
    subprocess.run(
        [
            "pdftoppm",
            "-r",
            str(DPI),
            "-f",
            "1",
            "-l",
            "1",
            "-png",
            "-singlefile",
            str(source),
            str(tmp_path / "page1"),
        ],
        check=True,
        timeout=60,
    )
    return Image.open(tmp_path / "page1.png").convert("L")


@pytest.mark.skipif(shutil.which("pdftoppm") is None, reason="pdftoppm (poppler-utils) absent")
def test_page_one_looks_like_the_reviewed_reference(summary, tmp_path):
    """To refresh after a reviewed layout change: run with WARDEN_UPDATE_REFERENCE=1,
    look at the PNG, commit it. The rendering is kept under test-output/ for CI."""
    page = _render_page_one(privacy_summary_pdf(summary), tmp_path)
    ARTEFACTS.mkdir(exist_ok=True)
    page.save(ARTEFACTS / "privacy_summary_page1.png")
    if os.environ.get("WARDEN_UPDATE_REFERENCE") == "1":
        page.save(REFERENCE)
    reference = Image.open(REFERENCE).convert("L")
    assert page.size == reference.size
    diff = ImageChops.difference(page, reference)
    changed = sum(diff.histogram()[PIXEL_THRESHOLD + 1 :])
    share = changed / (page.size[0] * page.size[1])
    assert share <= MAX_CHANGED_SHARE, f"{share:.2%} of page 1 differs from the reference"
