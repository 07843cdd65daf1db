# Drops the single-column index on audit_auditentry.workspace_id: audit_unique_seq (workspace_id, seq)
# leads with the same column, so every lookup by workspace (and the deletion checks of
# the foreign key) uses that one; the dropped index only cost a write per inserted row on
# the decision path. Only the index goes: the foreign key constraint stays as it is
# (Django's own AlterField would drop and re-validate it over the whole table).

import django.db.models.deletion
from django.db import migrations, models

INDEX = "audit_auditentry_workspace_id_cd37da5d"


class Migration(migrations.Migration):

    dependencies = [
        ("audit", "0009_pending_sealed_only"),
        ("tenants", "0005_role_groups"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="auditentry",
                    name="workspace",
                    field=models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="+",
                        to="tenants.workspace",
                    ),
                ),
            ],
            database_operations=[
                migrations.RunSQL(
                    f'DROP INDEX IF EXISTS "{INDEX}"',
                    f'CREATE INDEX IF NOT EXISTS "{INDEX}" ON "audit_auditentry" ("workspace_id")',
                ),
            ],
        ),
    ]
