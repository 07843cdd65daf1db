"""The group-commit queue cannot be forged (issue 21 item 6).

- audit_auditpending.mac: HMAC of a queued row's whole content under a key the
  database never holds (audit.signing.pending_mac_checker); the sealer chains only rows
  whose MAC verifies and quarantines the others.
- Queue rows present when this migration runs were written by the application before
  the queue carried a MAC (entries a stopped process left unsealed): they are MAC'd here,
  with the signing key of the migrating process, so they are chained as before rather
  than quarantined. (A row slipped into the queue before this migration would be MAC'd
  too: drain the queue first, `audit_verify` seals it, if that matters.) With rows
  waiting and no signing key the migration stops and says so. Stop the writers while it
  runs: a process still on the old code inserts queue rows without the column.
- audit_auditquarantine gains `source` (beyond_head | pending) and `reason`; queue rows
  have no seq.
- PostgreSQL: `warden_audit_pending_quarantine(ws, ids, reasons, at)`, SECURITY DEFINER
  owned by `warden_audit_pruner` (migration 0006), moves queue rows into quarantine; the
  queue's guard lets a DELETE through for that role, as the chain's does. A genuine row
  moved this way by hand is named by audit_verify (its MAC still verifies).
"""

from importlib import import_module

from django.db import migrations, models

ROLE = "warden_audit_pruner"

SEALED_OR_QUARANTINED = rf"""
CREATE OR REPLACE FUNCTION warden_audit_pending_sealed_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' AND current_user = '{ROLE}' THEN
        RETURN OLD;  -- inside warden_audit_pending_quarantine only
    END IF;
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
"""

SIGNATURE = "warden_audit_pending_quarantine(uuid, bigint[], text[], timestamptz)"


def _quarantine_function(schema: str) -> str:
    return f"""
CREATE OR REPLACE FUNCTION warden_audit_pending_quarantine(
    ws uuid, ids bigint[], reasons text[], at timestamptz
) RETURNS SETOF bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, {schema} AS $$
BEGIN
    RETURN QUERY
    WITH moved AS (
        DELETE FROM audit_auditpending p USING unnest(ids, reasons) AS r(id, why)
        WHERE p.id = r.id AND p.workspace_id = ws
        RETURNING p.*, r.why
    )
    INSERT INTO audit_auditquarantine (workspace_id, seq, found_at, "row", source, reason)
    SELECT m.workspace_id, NULL, at, to_jsonb(m) - 'workspace_id' - 'why', 'pending', m.why
    FROM moved m ORDER BY m.id
    RETURNING id;
END;
$$;
"""


def install(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    run = schema_editor.execute
    with schema_editor.connection.cursor() as cursor:
        cursor.execute("SELECT quote_ident(current_schema())")
        schema = cursor.fetchone()[0]
    run(f"GRANT SELECT, DELETE ON audit_auditpending TO {ROLE}")
    run(SEALED_OR_QUARANTINED, params=None)
    run(_quarantine_function(schema), params=None)
    run(f"ALTER FUNCTION {SIGNATURE} OWNER TO {ROLE}")


def uninstall(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    run = schema_editor.execute
    run(f"DROP FUNCTION IF EXISTS {SIGNATURE}")
    guard = import_module("audit.migrations.0009_pending_sealed_only").GUARD
    run(guard.split("CREATE TRIGGER")[0], params=None)
    run(f"REVOKE SELECT, DELETE ON audit_auditpending FROM {ROLE}")


def mac_waiting_rows(apps, schema_editor):
    """MAC the queue rows the application left before the queue carried a MAC."""
    pending = apps.get_model("audit", "AuditPending")
    rows = list(pending.objects.using(schema_editor.connection.alias).filter(mac=""))
    if not rows:
        return
    from audit import signing
    from audit.chain import PENDING_FIELDS, pending_message

    try:
        make_mac = signing.pending_mac_checker()[0]
    except signing.SigningKeyMissing as exc:
        raise RuntimeError(
            f"{len(rows)} audit entries are waiting in the group-commit queue and no "
            "WARDEN_AUDIT_SIGNING_KEY is set to MAC them: set it (the key the application "
            "runs with) and migrate again."
        ) from exc
    postgres = schema_editor.connection.vendor == "postgresql"
    with schema_editor.connection.cursor() as cursor:
        if postgres:  # UPDATE is refused by the queue's guard: the migration owns the table
            cursor.execute("ALTER TABLE audit_auditpending DISABLE TRIGGER audit_auditpending_sealed_only")
        for row in rows:
            values = {name: getattr(row, name) for name in PENDING_FIELDS[1:]}
            if values["client_ip"] is not None:
                values["client_ip"] = str(values["client_ip"])
            mac = make_mac(pending_message(row.workspace_id, values))
            cursor.execute("UPDATE audit_auditpending SET mac = %s WHERE id = %s", [mac, row.pk])
        if postgres:
            cursor.execute("ALTER TABLE audit_auditpending ENABLE TRIGGER audit_auditpending_sealed_only")



class Migration(migrations.Migration):

    dependencies = [
        ('audit', '0010_drop_redundant_workspace_index'),
    ]

    operations = [
        migrations.AddField(
            model_name='auditpending',
            name='mac',
            field=models.CharField(blank=True, default='', max_length=64),
        ),
        migrations.AddField(
            model_name='auditquarantine',
            name='reason',
            field=models.CharField(blank=True, db_default='', default='', max_length=32),
        ),
        migrations.AddField(
            model_name='auditquarantine',
            name='source',
            field=models.CharField(choices=[('beyond_head', 'Beyond Head'), ('pending', 'Pending')], db_default='beyond_head', default='beyond_head', max_length=16),
        ),
        migrations.AlterField(
            model_name='auditquarantine',
            name='seq',
            field=models.PositiveBigIntegerField(blank=True, null=True),
        ),
        migrations.AlterField(
            model_name='exceptionrecord',
            name='kind',
            field=models.CharField(choices=[('denial', 'Denial'), ('policy_error', 'Policy Error'), ('anomaly', 'Anomaly'), ('override', 'Override'), ('delivery_failure', 'Delivery Failure'), ('chain_broken', 'Chain Broken'), ('credential_in_params', 'Credential In Params'), ('queue_forged', 'Queue Forged')], max_length=24),
        ),
        migrations.RunPython(mac_waiting_rows, migrations.RunPython.noop, elidable=False),
        migrations.RunPython(install, uninstall, elidable=False),
    ]
