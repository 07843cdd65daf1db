# The scheduled export's format (issue 27): the destination lives in oversight since
# 0001_initial, so the column is added here, on the table it kept.

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ("oversight", "0001_initial"),
        ("notifications", "0008_oversight_models_moved"),
    ]

    operations = [
        migrations.AddField(
            model_name="auditexportdestination",
            name="format",
            field=models.CharField(
                choices=[
                    ("jsonl", "JSONL (Warden's own)"),
                    ("ocsf", "OCSF 1.2.0 (API Activity)"),
                    ("syslog", "Syslog (RFC 5424)"),
                ],
                default="jsonl",
                max_length=8,
            ),
        ),
    ]
