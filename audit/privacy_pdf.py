"""The privacy summary as a PDF (fpdf2: pure Python, no system libraries).

Uses the PDF core fonts so the output does not depend on fonts installed on the
host; text outside Latin-1 (a workspace name, say) is transliterated to '?'."""

from __future__ import annotations

from typing import Any

from fpdf import FPDF

_FONT = "Helvetica"


def _latin1(text: Any) -> str:
    return str(text).encode("latin-1", "replace").decode("latin-1")


class _SummaryPDF(FPDF):
    def __init__(self, footer_text: str):
        super().__init__(format="A4")
        self._footer_text = footer_text

    def footer(self):
        self.set_y(-15)
        self.set_font(_FONT, size=8)
        self.set_text_color(110, 110, 110)
        self.cell(0, 10, _latin1(f"{self._footer_text} - page {self.page_no()}"), align="C")


def privacy_summary_pdf(summary: dict[str, Any]) -> bytes:
    workspace = summary["workspace"]
    head = summary["audit_chain_head"]
    pdf = _SummaryPDF(f"Warden privacy summary for {workspace['slug']}")
    pdf.set_title(_latin1(f"Privacy summary: {workspace['name']}"))
    pdf.set_author("Warden")
    pdf.set_creator("Warden")
    pdf.set_auto_page_break(auto=True, margin=18)
    pdf.add_page()
    width = pdf.epw

    pdf.set_font(_FONT, style="B", size=18)
    pdf.multi_cell(width, 9, _latin1(f"Privacy summary: {workspace['name']}"))
    pdf.set_font(_FONT, size=9)
    pdf.set_text_color(80, 80, 80)
    pdf.multi_cell(
        width,
        5,
        _latin1(
            f"Workspace {workspace['slug']} ({workspace['id']}). "
            f"Generated {summary['generated_at']}. "
            f"Audit chain head #{head['seq']}: {head['hash']}"
        ),
    )
    pdf.set_text_color(0, 0, 0)
    pdf.ln(3)

    for section in summary["sections"]:
        pdf.set_font(_FONT, style="B", size=12)
        pdf.multi_cell(width, 7, _latin1(section["title"]))
        pdf.set_font(_FONT, size=10)
        for paragraph in section["paragraphs"]:
            pdf.multi_cell(width, 5, _latin1(paragraph))
            pdf.ln(1.5)
        pdf.ln(2)

    _figures_table(pdf, summary)
    return bytes(pdf.output())


def _figures_table(pdf: FPDF, summary: dict[str, Any]) -> None:
    """The raw figures, so a reviewer can check the prose against numbers."""
    width = pdf.epw
    pdf.set_font(_FONT, style="B", size=12)
    pdf.multi_cell(width, 7, "Figures")
    pdf.set_font(_FONT, size=10)
    rows = [("Record", "Count")]
    rows += [(name.replace("_", " "), f"{n:,}") for name, n in summary["stored"]["counts"].items()]
    for dc, figures in summary["stored"]["by_data_class"].items():
        rows.append((f"tools handling {dc}", f"{figures['tools']:,}"))
        rows.append((f"requests to {dc} tools", f"{figures['action_requests']:,}"))
    with pdf.table(col_widths=(3, 1), text_align=("LEFT", "RIGHT"), line_height=6) as table:
        for row in rows:
            table.row([_latin1(cell) for cell in row])
