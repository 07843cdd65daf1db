"""Erasable personal data (approvals.personal_data): the request's plain params and the
confirmation's plain summary move to columns that hold only platform requests' values;
agent requests' values are sealed under a per-request data key. Existing rows are moved
by `manage.py personal_data_seal` (docs/compliance/erasure.md), not here: it needs the
deployment's secrets."""

from django.db import migrations, models

from approvals import personal_data


def unseal(apps, schema_editor):
    """Backwards: the sealed values go back to the plain columns the older schema reads
    (and the pending outcome gets its summary back), so a rollback loses nothing that
    was not erased."""
    ActionRequest = apps.get_model("approvals", "ActionRequest")
    ConfirmationRequest = apps.get_model("approvals", "ConfirmationRequest")

    def opened(action, token):
        return personal_data.open_sealed(personal_data.unwrap(action.data_key), token)

    summaries = {}
    for confirmation in ConfirmationRequest.objects.exclude(sealed_summary="").select_related(
        "action_request"
    ):
        try:
            confirmation.plain_summary = str(
                opened(confirmation.action_request, confirmation.sealed_summary)
            )
        except personal_data.Erased:
            confirmation.plain_summary = personal_data.ERASED
        confirmation.save(update_fields=["plain_summary"])
        summaries[confirmation.action_request_id] = confirmation.plain_summary
    for action in ActionRequest.objects.exclude(sealed_params="", sealed_output="").iterator():
        try:
            if action.sealed_params:
                action.plain_params = opened(action, action.sealed_params)
            if action.sealed_output:
                action.result_output = opened(action, action.sealed_output)
        except personal_data.Erased:
            action.plain_params = {}
        action.save(update_fields=["plain_params", "result_output"])
    for action in ActionRequest.objects.filter(pk__in=list(summaries)):
        if action.outcome.get("kind") == "pending" and "summary" not in action.outcome:
            action.outcome = {**action.outcome, "summary": summaries[action.pk]}
            action.save(update_fields=["outcome"])


class Migration(migrations.Migration):
    dependencies = [("approvals", "0013_action_awaiting_result_index")]

    operations = [
        migrations.RenameField("actionrequest", "params", "plain_params"),
        migrations.RenameField("confirmationrequest", "summary", "plain_summary"),
        migrations.AlterField("confirmationrequest", "plain_summary", models.TextField(blank=True)),
        migrations.AddField(
            "confirmationrequest",
            "sealed_summary",
            models.TextField(blank=True, editable=False, default=""),
            preserve_default=False,
        ),
        migrations.AddField(
            "actionrequest",
            "data_key",
            models.TextField(blank=True, editable=False, default=""),
            preserve_default=False,
        ),
        migrations.AddField(
            "actionrequest",
            "sealed_params",
            models.TextField(blank=True, editable=False, default=""),
            preserve_default=False,
        ),
        migrations.AddField(
            "actionrequest",
            "sealed_output",
            models.TextField(blank=True, editable=False, default=""),
            preserve_default=False,
        ),
        migrations.AddField(
            "actionrequest",
            "subject_digest",
            models.CharField(max_length=64, blank=True, editable=False, default=""),
            preserve_default=False,
        ),
        migrations.AddField(
            "actionrequest",
            "erased_at",
            models.DateTimeField(null=True, blank=True, editable=False),
        ),
        migrations.AddIndex(
            "actionrequest",
            models.Index(
                fields=["workspace", "subject_digest"],
                condition=~models.Q(subject_digest=""),
                name="action_data_subject",
            ),
        ),
        migrations.AddField(
            "tool",
            "subject_param",
            models.CharField(
                max_length=200,
                blank=True,
                default="",
                help_text="Parameter naming the data subject (erasure by subject); blank: none.",
            ),
            preserve_default=False,
        ),
        # Last, so that backwards it runs first, while the sealed columns still exist.
        migrations.RunPython(migrations.RunPython.noop, unseal),
    ]
