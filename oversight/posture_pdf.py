"""The posture as one page of the privacy summary PDF (oversight.privacy_pdf draws the
rest and passes its FPDF, whose `block` writes a paragraph across the printable width
with hidden characters marked): same core fonts and margins, so every line stays inside
the printable area."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fpdf import FPDF

_FONT = "Helvetica"
MAX_NAMES = 12  # tool or key names listed per line before "and N more"


def _names(names: list[str]) -> str:
    if not names:
        return "none"
    shown = ", ".join(names[:MAX_NAMES])
    more = len(names) - MAX_NAMES
    return f"{shown} and {more} more" if more > 0 else shown


def posture_page(posture: dict[str, Any]) -> Callable[[FPDF], None]:
    """A page drawer for privacy_summary_pdf(extra_pages=...)."""

    def draw(pdf: FPDF) -> None:
        sensitivity, autonomy = posture["sensitivity"], posture["autonomy"]
        decision = posture["decision"]
        pdf.set_font(_FONT, style="B", size=16)
        pdf.block(8, "Posture: data sensitivity x autonomy", align="L")
        pdf.set_font(_FONT, size=9)
        pdf.set_text_color(80, 80, 80)
        pdf.block(
            5,
            f"Computed {posture['computed_at']} from the workspace's settings, keys, tool "
            f"catalog and the last {posture['window_days']} days of decisions.",
            align="L",
        )
        pdf.set_text_color(0, 0, 0)
        pdf.ln(2)
        pdf.set_font(_FONT, style="B", size=12)
        pdf.block(
            7,
            f"Policy decision: {decision['label']}. Risk score {posture['score']} of 100.",
            align="L",
        )
        pdf.set_font(_FONT, size=10)
        pdf.block(5, decision["meaning"], align="L")
        pdf.ln(2)

        pdf.set_font(_FONT, style="B", size=12)
        pdf.block(7, f"Data sensitivity ({sensitivity['points']} of 50 points)", align="L")
        pdf.set_font(_FONT, size=10)
        pdf.block(
            5,
            f"{sensitivity['sensitive_tools']} of {sensitivity['enabled_tools']} enabled tools "
            f"handle sensitive data; {sensitivity['sensitive_decisions']} of "
            f"{sensitivity['decisions']} recent decisions touched it.",
            align="L",
        )
        for row in sensitivity["tools_by_data_class"]:
            pdf.block(5, f"- {row['data_class']}: {_names(row['tools'])}", align="L")
        pdf.ln(2)

        pdf.set_font(_FONT, style="B", size=12)
        pdf.block(7, f"Autonomy ({autonomy['points']} of 50 points)", align="L")
        pdf.set_font(_FONT, size=10)
        unattended = [k["name"] for k in autonomy["unattended_keys"]]
        for line in (
            f"Mode: {'dry run (nothing done for real)' if autonomy['dry_run'] else 'live'}.",
            f"Writes switch: {'on' if autonomy['writes_enabled'] else 'off'}. Unattended "
            f"outbound: {'allowed' if autonomy['outbound_allowed'] else 'needs a human'}. "
            f"Sensitivity floor: {'on' if autonomy['sensitivity_floor'] else 'off'}.",
            f"Unattended keys: {len(unattended)} of {autonomy['active_keys']} active "
            f"({_names(unattended)}).",
            f"Write/external tools never confirmed: "
            f"{len(autonomy['tools_confirmation_never'])} of {autonomy['acting_tools']} "
            f"({_names(autonomy['tools_confirmation_never'])}).",
        ):
            pdf.block(5, line, align="L")
        pdf.ln(2)

        pdf.set_font(_FONT, style="B", size=12)
        pdf.block(7, "Mitigations", align="L")
        pdf.set_font(_FONT, size=10)
        if not posture["mitigations"]:
            pdf.block(5, "None: every knob is at its safest setting.", align="L")
        for m in posture["mitigations"]:
            api = m["api"]
            where = f"{api['method']} {api['path']} {api['body']}".strip()
            pdf.block(5, f"-{m['points']} (to {m['score_after']}): {m['title']}", align="L")
            pdf.set_text_color(80, 80, 80)
            pdf.block(5, f"    Setting: {where}; admin {m['admin_url']}", align="L")
            pdf.set_text_color(0, 0, 0)
            pdf.ln(1)
        pdf.ln(1)
        pdf.set_font(_FONT, size=8)
        pdf.set_text_color(80, 80, 80)
        parts = ", ".join(
            f"{p['factor']} {p['points']}/{p['weight']}" for p in posture["score_parts"]
        )
        pdf.block(4, f"Score = sum of points, rounded: {parts}.", align="L")
        pdf.set_text_color(0, 0, 0)

    return draw
