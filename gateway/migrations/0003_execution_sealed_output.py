from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("gateway", "0002_execution_output_copy")]

    operations = [
        migrations.AddField(
            "execution",
            "sealed_output",
            models.TextField(blank=True, editable=False, default=""),
            preserve_default=False,
        ),
    ]
