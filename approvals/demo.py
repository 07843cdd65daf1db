"""Demo tool catalog for `manage.py load_demo`: one tool per kind of gate."""

from __future__ import annotations

from approvals.catalog import tool_create
from approvals.models import Tool
from common.actor import Actor
from tenants.models import Workspace


def _schema(required: dict[str, str], optional: dict[str, str] | None = None) -> dict:
    """An object schema: the named parameters with their JSON types. A call missing one
    is refused with `invalid_params` naming it, instead of a condition failing
    (`policy_error`) or a summary reading "customer ?"."""
    fields = {**required, **(optional or {})}
    return {
        "type": "object",
        "properties": {name: {"type": kind} for name, kind in fields.items()},
        "required": list(required),
    }


DEMO_TOOLS = (
    {
        "name": "crm.lookup",
        "description": "Read a CRM contact by id.",
        "level": "read",
        "data_classes": ["pii"],
        "input_schema": _schema({"contact_id": "string"}),
    },
    {
        "name": "crm.update_stage",
        "description": "Move a deal to another pipeline stage.",
        "level": "write",
        "summary_template": "Move deal {params.deal_id} to stage {params.stage}",
        "input_schema": _schema({"deal_id": "string", "stage": "string"}),
    },
    {
        "name": "email.send",
        "description": "Send an email on the company's behalf.",
        "level": "external",
        "data_classes": ["pii"],
        "summary_template": 'Email {params.to} with subject "{params.subject}"',
        "input_schema": _schema({"to": "string", "subject": "string"}, {"body": "string"}),
    },
    {
        "name": "billing.set_plan",
        "description": "Change the customer's plan. Downgrades need a human.",
        "level": "write",
        "data_classes": ["financial"],
        "irreversible": True,
        "confirmation": "conditional",
        "condition": "params.new_plan_rank < workspace.plan_rank",
        "summary_template": "Change plan of {params.customer_id} to {params.new_plan} "
        "(rank {params.new_plan_rank})",
        "input_schema": _schema(
            {"customer_id": "string", "new_plan": "string", "new_plan_rank": "integer"}
        ),
    },
    {
        "name": "billing.refund",
        "description": "Refund a customer. Refunds above 1000 need a human.",
        "level": "write",
        "data_classes": ["financial"],
        "confirmation": "conditional",
        "condition": "params.amount > 1000",
        "summary_template": "Refund {params.amount} to customer {params.customer_id}",
        "input_schema": _schema({"amount": "number", "customer_id": "string"}),
    },
)


def load_demo_tools(*, workspace: Workspace, actor: Actor) -> list[Tool]:
    """Create the demo tools that are missing; existing ones are left as they are."""
    existing = set(Tool.objects.filter(workspace=workspace).values_list("name", flat=True))
    created = []
    for spec in DEMO_TOOLS:
        if spec["name"] not in existing:
            created.append(
                tool_create(
                    workspace=workspace, actor=actor, reason="demo: seeded by load_demo", **spec
                )
            )
    return created
