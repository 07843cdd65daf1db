"""The privacy summary as a PDF (fpdf2: pure Python, no system libraries).

Uses the PDF core fonts so the output does not depend on fonts installed on the
host; text outside Latin-1 (a workspace name, say) is transliterated to '?', and
invisible or direction-changing characters are shown as [U+XXXX] markers. The same
summary always gives the same bytes: the PDF's dates are the summary's own
`generated_at`, so a rendered page can be compared with a reviewed picture."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from fpdf import FPDF
from fpdf.enums import XPos, YPos

from common.text import reveal_invisible

_FONT = "Helvetica"


def _latin1(text: Any) -> str:
    shown = reveal_invisible(str(text), opening="[", closing="]")
    return shown.encode("latin-1", "replace").decode("latin-1")


class _SummaryPDF(FPDF):
    def __init__(self, footer_text: str):
        super().__init__(format="A4")
        self._footer_text = footer_text

    def footer(self):
        # Inside the 10 mm margin, below the body (which breaks 18 mm above the edge).
        self.set_y(-17)
        self.set_font(_FONT, size=8)
        self.set_text_color(110, 110, 110)
        self.cell(0, 6, _latin1(f"{self._footer_text} - page {self.page_no()}"), align="C")

    def block(self, height: float, text: Any, **kwargs) -> None:
        """A paragraph across the printable width that leaves the cursor at the left
        margin of the next line. fpdf2's multi_cell leaves it at the right edge by
        default, which pushed every following paragraph off the page."""
        self.multi_cell(
            self.epw, height, _latin1(text), new_x=XPos.LMARGIN, new_y=YPos.NEXT, **kwargs
        )


def privacy_summary_pdf(
    summary: dict[str, Any], *, extra_pages: Sequence[Callable[[FPDF], None]] = ()
) -> bytes:
    """`extra_pages` (the posture page) each draw one page of their own after the
    figures, with `pdf.block` for paragraphs; the summary itself stays posture-free."""
    workspace = summary["workspace"]
    head = summary["audit_chain_head"]
    pdf = _SummaryPDF(f"Warden privacy summary for {workspace['slug']}")
    pdf.set_title(_latin1(f"Privacy summary: {workspace['name']}"))
    pdf.set_author("Warden")
    pdf.set_creator("Warden")
    pdf.set_producer("Warden")
    pdf.set_creation_date(datetime.fromisoformat(summary["generated_at"]))
    pdf.set_auto_page_break(auto=True, margin=18)
    pdf.add_page()

    pdf.set_font(_FONT, style="B", size=18)
    pdf.block(9, f"Privacy summary: {workspace['name']}", align="L")
    pdf.set_font(_FONT, size=9)
    pdf.set_text_color(80, 80, 80)
    pdf.block(
        5,
        f"Workspace {workspace['slug']} ({workspace['id']}). "
        f"Generated {summary['generated_at']}. "
        f"Audit chain head #{head['seq']}: {head['hash']}",
        align="L",
    )
    pdf.set_text_color(0, 0, 0)
    pdf.ln(3)

    for section in summary["sections"]:
        pdf.set_font(_FONT, style="B", size=12)
        pdf.block(7, section["title"], align="L")
        pdf.set_font(_FONT, size=10)
        for paragraph in section["paragraphs"]:
            pdf.block(5, paragraph)
            pdf.ln(1.5)
        pdf.ln(2)

    _figures_table(pdf, summary)
    for draw in extra_pages:
        pdf.add_page()
        draw(pdf)
    return bytes(pdf.output())


def _figures_table(pdf: _SummaryPDF, summary: dict[str, Any]) -> None:
    """The raw figures, so a reviewer can check the prose against numbers."""
    pdf.set_font(_FONT, style="B", size=12)
    pdf.block(7, "Figures", align="L")
    pdf.set_font(_FONT, size=10)
    rows = [("Record", "Count")]
    rows += [(name.replace("_", " "), f"{n:,}") for name, n in summary["stored"]["counts"].items()]
    for dc, figures in summary["stored"]["by_data_class"].items():
        rows.append((f"tools handling {dc}", f"{figures['tools']:,}"))
        rows.append((f"requests to {dc} tools", f"{figures['action_requests']:,}"))
    with pdf.table(col_widths=(3, 1), text_align=("LEFT", "RIGHT"), line_height=6) as table:
        for row in rows:
            table.row([_latin1(cell) for cell in row])
