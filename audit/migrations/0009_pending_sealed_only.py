"""The group-commit queue is guarded like the chain (PostgreSQL; SQLite relies on the
model layer and on verification).

Rows of audit_auditpending are committed with their change but are not yet chained, so
until this migration a session with table privileges could delete a queued entry in the
few milliseconds before it was sealed, leaving a decision without evidence. Now:
- a queued row may be deleted only once an identical entry (same workspace, time, actor,
  action, target, request id, input, decision and outcome) is in the chain, which is
  what sealing does (the sealer writes the entries first, then deletes the queue rows,
  in one transaction); a chain entry cannot be forged without linking to the head and,
  past the first MAC, without the application's MAC key;
- UPDATE is refused, and TRUNCATE is refused as for the other audit tables.
"""

from django.db import migrations

GUARD = r"""
CREATE OR REPLACE FUNCTION warden_audit_pending_sealed_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' AND EXISTS (
        SELECT 1 FROM audit_auditentry e
        WHERE e.workspace_id = OLD.workspace_id
          AND e.created_at = OLD.created_at
          AND e.actor = OLD.actor
          AND e.action = OLD.action
          AND e.target_type = OLD.target_type
          AND e.target_id = OLD.target_id
          AND e.request_id = OLD.request_id
          AND e.input = OLD.input
          AND e.decision = OLD.decision
          AND e.outcome = OLD.outcome
    ) THEN
        RETURN OLD;  -- sealed: the entry is in the chain
    END IF;
    RAISE EXCEPTION 'warden: queued audit entries leave only by being chained (% refused)',
        TG_OP USING ERRCODE = 'restrict_violation';
END;
$$;
CREATE TRIGGER audit_auditpending_sealed_only BEFORE UPDATE OR DELETE ON audit_auditpending
    FOR EACH ROW EXECUTE FUNCTION warden_audit_pending_sealed_only();
CREATE TRIGGER audit_auditpending_no_truncate BEFORE TRUNCATE ON audit_auditpending
    FOR EACH STATEMENT EXECUTE FUNCTION warden_audit_no_truncate();
"""

UNGUARD = r"""
DROP TRIGGER IF EXISTS audit_auditpending_no_truncate ON audit_auditpending;
DROP TRIGGER IF EXISTS audit_auditpending_sealed_only ON audit_auditpending;
DROP FUNCTION IF EXISTS warden_audit_pending_sealed_only();
"""


def install(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(GUARD, params=None)


def uninstall(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(UNGUARD, params=None)


class Migration(migrations.Migration):
    dependencies = [("audit", "0008_pending_group_commit")]

    operations = [migrations.RunPython(install, uninstall, elidable=False)]
