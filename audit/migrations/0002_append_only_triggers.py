"""Append-only at the database level (PostgreSQL; SQLite relies on the model guard).

One trigger function guards audit_auditentry, audit_versionlog and
audit_exceptionrecord:
- UPDATE is refused, except on exception records when only the resolution fields
  (mitigation, resolved_by, resolved_at) change;
- DELETE is refused, except inside a retention prune (audit/retention.py): the
  transaction declares the workspace and the last pruned sequence number with
  set_config(..., is_local => true), and only rows of that workspace up to that
  sequence number (or whose audit entry is) may go.
TRUNCATE is not guarded (it is table-owner-only; run the application with a role
that does not own the tables, see README "Evidence").
"""

from django.db import migrations

FUNCTION = r"""
CREATE OR REPLACE FUNCTION warden_audit_append_only() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    prune_ws text := NULLIF(current_setting('warden.audit_prune_workspace', true), '');
    prune_through bigint :=
        NULLIF(current_setting('warden.audit_prune_through_seq', true), '')::bigint;
BEGIN
    IF TG_OP = 'DELETE' AND prune_ws IS NOT NULL AND prune_through IS NOT NULL
       AND OLD.workspace_id::text = prune_ws THEN
        IF TG_TABLE_NAME = 'audit_auditentry' THEN
            IF OLD.seq <= prune_through THEN
                RETURN OLD;
            END IF;
        ELSIF EXISTS (
            SELECT 1 FROM audit_auditentry e
            WHERE e.id = OLD.audit_entry_id AND e.seq <= prune_through
        ) THEN
            RETURN OLD;
        END IF;
    END IF;
    IF TG_OP = 'UPDATE' AND TG_TABLE_NAME = 'audit_exceptionrecord' THEN
        IF (NEW.id, NEW.workspace_id, NEW.created_at, NEW.kind, NEW.severity, NEW.what,
            NEW.why, NEW.evidence, NEW.subject, NEW.audit_entry_id)
           IS NOT DISTINCT FROM
           (OLD.id, OLD.workspace_id, OLD.created_at, OLD.kind, OLD.severity, OLD.what,
            OLD.why, OLD.evidence, OLD.subject, OLD.audit_entry_id) THEN
            RETURN NEW;
        END IF;
    END IF;
    RAISE EXCEPTION 'warden: % is append-only (% refused)', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'restrict_violation';
END;
$$;
"""

TABLES = ("audit_auditentry", "audit_versionlog", "audit_exceptionrecord")


def install(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute(FUNCTION, params=None)
    for table in TABLES:
        schema_editor.execute(
            f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
            "FOR EACH ROW EXECUTE FUNCTION warden_audit_append_only()"
        )


def uninstall(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for table in TABLES:
        schema_editor.execute(f"DROP TRIGGER IF EXISTS {table}_append_only ON {table}")
    schema_editor.execute("DROP FUNCTION IF EXISTS warden_audit_append_only()")


class Migration(migrations.Migration):
    dependencies = [("audit", "0001_initial")]

    operations = [migrations.RunPython(install, uninstall, elidable=False)]
