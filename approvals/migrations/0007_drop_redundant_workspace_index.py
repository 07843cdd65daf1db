# Drops the single-column index on approvals_actionrequest.workspace_id: the index on
# (workspace_id, key_id, tool_name, created_at) leads with the same column, so every lookup by workspace (and the deletion checks of
# the foreign key) uses that one; the dropped index only cost a write per inserted row on
# the decision path. Only the index goes: the foreign key constraint stays as it is
# (Django's own AlterField would drop and re-validate it over the whole table).

import django.db.models.deletion
from django.db import migrations, models

INDEX = "approvals_actionrequest_workspace_id_95606e8b"


class Migration(migrations.Migration):

    dependencies = [
        ("approvals", "0006_action_outcome"),
        ("tenants", "0005_role_groups"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="actionrequest",
                    name="workspace",
                    field=models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="+",
                        to="tenants.workspace",
                    ),
                ),
            ],
            database_operations=[
                migrations.RunSQL(
                    f'DROP INDEX IF EXISTS "{INDEX}"',
                    f'CREATE INDEX IF NOT EXISTS "{INDEX}" ON "approvals_actionrequest" ("workspace_id")',
                ),
            ],
        ),
    ]
