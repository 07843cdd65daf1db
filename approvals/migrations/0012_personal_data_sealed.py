"""Erasable personal data (approvals.personal_data): the request's plain params and the
confirmation's plain summary move to columns that hold only platform requests' values;
agent requests' values are sealed under a per-request data key. Existing rows are moved
by `manage.py personal_data_seal` (docs/compliance/erasure.md), not here: it needs the
deployment's secrets."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("approvals", "0011_confirmation_trace_parent")]

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
    ]
