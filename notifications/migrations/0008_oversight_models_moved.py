"""AuditExportDestination, AuditExportBatch and AnomalyFinding now belong to oversight
(oversight.0001_initial): state only, the tables stay. Their content types move with
them, so permissions and admin log entries that point at them keep pointing at them.
Reversible: backwards the content types return and the state comes back here."""

from django.db import migrations

MOVED = ("auditexportdestination", "auditexportbatch", "anomalyfinding")


def _relabel(apps, source: str, target: str):
    ContentType = apps.get_model("contenttypes", "ContentType")
    for model in MOVED:
        # A content type post_migrate made for the new label is empty: the old one wins.
        ContentType.objects.filter(app_label=target, model=model).delete()
        ContentType.objects.filter(app_label=source, model=model).update(app_label=target)


def forwards(apps, schema_editor):
    _relabel(apps, "notifications", "oversight")


def backwards(apps, schema_editor):
    _relabel(apps, "oversight", "notifications")


class Migration(migrations.Migration):
    dependencies = [
        ("contenttypes", "0002_remove_content_type_name"),
        ("notifications", "0007_approval_digest"),
        ("oversight", "0001_initial"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[],
            state_operations=[
                migrations.RemoveField(model_name="auditexportbatch", name="workspace"),
                migrations.RemoveField(model_name="auditexportdestination", name="workspace"),
                migrations.DeleteModel(name="AnomalyFinding"),
                migrations.DeleteModel(name="AuditExportBatch"),
                migrations.DeleteModel(name="AuditExportDestination"),
            ],
        ),
        migrations.RunPython(forwards, backwards),
    ]
