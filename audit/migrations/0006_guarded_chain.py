"""Database guards that no session setting opens (PostgreSQL; SQLite relies on the model
guards and on verification).

Replaces the set_config() door of migration 0002:
- rows of the audit tables leave only through two SECURITY DEFINER functions owned by
  the dedicated NOLOGIN role `warden_audit_pruner`: `warden_audit_prune(ws, through)`
  (retention; it checks that the newest `audit.pruned` entry of the chain declares that
  exact range) and `warden_audit_quarantine(ws, at)` (moves rows past the chain head to
  audit_auditquarantine). The row trigger lets a DELETE through only when current_user
  is that role, which no application session is (nobody is granted membership);
- UPDATE stays refused, except the resolution fields of exception records and the
  delivery fields of checkpoints;
- INSERT into audit_auditentry must be exactly the next entry: seq = head seq + 1 and
  prev_hash = head hash (the head row is locked while checking);
- the chain head (audit_auditchainhead) is created at seq 0 only, moves only one step
  at a time onto an entry that exists and links to the old head, and is deleted only
  when its workspace has no entries: no rewind;
- TRUNCATE of any audit table is refused.

Creating the role needs CREATEROLE (or create `warden_audit_pruner` NOLOGIN beforehand
and let the migrating role SET ROLE to it). A superuser can still disable triggers: that
is what signed checkpoints are for (README "Evidence": threat model).
"""

from importlib import import_module

from django.db import migrations

ROLE = "warden_audit_pruner"
GUARDED = (
    "audit_auditentry",
    "audit_versionlog",
    "audit_exceptionrecord",
    "audit_auditcheckpoint",
    "audit_auditquarantine",
)
TRUNCATE_GUARDED = (*GUARDED, "audit_auditchainhead")

CREATE_ROLE = f"""
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{ROLE}') THEN
        CREATE ROLE {ROLE} NOLOGIN;
    END IF;
EXCEPTION WHEN duplicate_object OR unique_violation THEN
    NULL;  -- created meanwhile by a concurrent migration of another database
END
$$;
"""

APPEND_ONLY = f"""
CREATE OR REPLACE FUNCTION warden_audit_append_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' AND current_user = '{ROLE}' THEN
        RETURN OLD;  -- inside warden_audit_prune / warden_audit_quarantine only
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
    IF TG_OP = 'UPDATE' AND TG_TABLE_NAME = 'audit_auditcheckpoint' THEN
        IF (NEW.id, NEW.workspace_id, NEW.seq, NEW.hash, NEW.signed_at, NEW.key_id,
            NEW.signature)
           IS NOT DISTINCT FROM
           (OLD.id, OLD.workspace_id, OLD.seq, OLD.hash, OLD.signed_at, OLD.key_id,
            OLD.signature) THEN
            RETURN NEW;
        END IF;
    END IF;
    RAISE EXCEPTION 'warden: % is append-only (% refused)', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'restrict_violation';
END;
$$;
"""

NEXT_ENTRY_ONLY = r"""
CREATE OR REPLACE FUNCTION warden_audit_next_entry_only() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    head_seq bigint;
    head_hash varchar;
BEGIN
    SELECT seq, hash INTO head_seq, head_hash FROM audit_auditchainhead
    WHERE workspace_id = NEW.workspace_id FOR UPDATE;
    IF NOT FOUND THEN
        head_seq := 0;
        head_hash := repeat('0', 64);
    END IF;
    IF NEW.seq <> head_seq + 1 OR NEW.prev_hash IS DISTINCT FROM head_hash THEN
        RAISE EXCEPTION 'warden: audit entry #% refused: the next entry is #% linking to the head',
            NEW.seq, head_seq + 1 USING ERRCODE = 'restrict_violation';
    END IF;
    RETURN NEW;
END;
$$;
"""

HEAD_GUARD = r"""
CREATE OR REPLACE FUNCTION warden_audit_head_guard() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        IF NEW.seq = 0 AND NEW.hash = repeat('0', 64) THEN
            RETURN NEW;
        END IF;
    ELSIF TG_OP = 'UPDATE' THEN
        IF NEW IS NOT DISTINCT FROM OLD THEN
            RETURN NEW;
        END IF;
        IF NEW.workspace_id = OLD.workspace_id AND NEW.seq = OLD.seq + 1 AND EXISTS (
            SELECT 1 FROM audit_auditentry e
            WHERE e.workspace_id = NEW.workspace_id AND e.seq = NEW.seq
              AND e.hash = NEW.hash AND e.prev_hash = OLD.hash
        ) THEN
            RETURN NEW;
        END IF;
    ELSIF TG_OP = 'DELETE' THEN
        IF NOT EXISTS (SELECT 1 FROM audit_auditentry WHERE workspace_id = OLD.workspace_id) THEN
            RETURN OLD;
        END IF;
    END IF;
    RAISE EXCEPTION 'warden: the audit chain head only moves forward with the chain (% refused)',
        TG_OP USING ERRCODE = 'restrict_violation';
END;
$$;
"""

NO_TRUNCATE = """
CREATE OR REPLACE FUNCTION warden_audit_no_truncate() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'warden: % is append-only (TRUNCATE refused)', TG_TABLE_NAME
        USING ERRCODE = 'restrict_violation';
END;
$$;
"""


def _prune_function(schema: str) -> str:
    return f"""
CREATE OR REPLACE FUNCTION warden_audit_prune(ws uuid, through bigint) RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, {schema} AS $$
DECLARE
    declared bigint;
    deleted bigint;
BEGIN
    -- The newest retention checkpoint of the chain must declare exactly this range.
    SELECT (input->>'pruned_through_seq')::bigint INTO declared FROM audit_auditentry
    WHERE workspace_id = ws AND action = 'audit.pruned' ORDER BY seq DESC LIMIT 1;
    IF declared IS NULL OR declared <> through THEN
        RAISE EXCEPTION 'warden: prune through #% is not declared by the chain', through
            USING ERRCODE = 'restrict_violation';
    END IF;
    IF EXISTS (
        SELECT 1 FROM audit_exceptionrecord r JOIN audit_auditentry e ON e.id = r.audit_entry_id
        WHERE e.workspace_id = ws AND e.seq <= through AND r.resolved_at IS NULL
    ) THEN
        RAISE EXCEPTION 'warden: open exception records are never pruned'
            USING ERRCODE = 'restrict_violation';
    END IF;
    DELETE FROM audit_exceptionrecord r USING audit_auditentry e
    WHERE r.audit_entry_id = e.id AND e.workspace_id = ws AND e.seq <= through;
    DELETE FROM audit_versionlog v USING audit_auditentry e
    WHERE v.audit_entry_id = e.id AND e.workspace_id = ws AND e.seq <= through;
    DELETE FROM audit_auditentry WHERE workspace_id = ws AND seq <= through;
    GET DIAGNOSTICS deleted = ROW_COUNT;
    RETURN deleted;
END;
$$;
"""


def _quarantine_function(schema: str) -> str:
    return f"""
CREATE OR REPLACE FUNCTION warden_audit_quarantine(ws uuid, at timestamptz) RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, {schema} AS $$
DECLARE
    head_seq bigint;
    moved bigint;
BEGIN
    SELECT seq INTO head_seq FROM audit_auditchainhead WHERE workspace_id = ws FOR UPDATE;
    IF NOT FOUND THEN
        head_seq := 0;
    END IF;
    INSERT INTO audit_auditquarantine (workspace_id, seq, found_at, "row")
    SELECT e.workspace_id, e.seq, at, to_jsonb(e) - 'id' - 'workspace_id'
    FROM audit_auditentry e WHERE e.workspace_id = ws AND e.seq > head_seq;
    DELETE FROM audit_exceptionrecord r USING audit_auditentry e
    WHERE r.audit_entry_id = e.id AND e.workspace_id = ws AND e.seq > head_seq;
    DELETE FROM audit_versionlog v USING audit_auditentry e
    WHERE v.audit_entry_id = e.id AND e.workspace_id = ws AND e.seq > head_seq;
    DELETE FROM audit_auditentry WHERE workspace_id = ws AND seq > head_seq;
    GET DIAGNOSTICS moved = ROW_COUNT;
    RETURN moved;
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
    run(CREATE_ROLE, params=None)
    run(f"GRANT USAGE ON SCHEMA {schema} TO {ROLE}")
    run(f"GRANT SELECT ON audit_auditchainhead TO {ROLE}")
    run(f"GRANT SELECT, DELETE ON {', '.join(GUARDED[:3])} TO {ROLE}")
    run(f"GRANT SELECT, INSERT ON audit_auditquarantine TO {ROLE}")
    with schema_editor.connection.cursor() as cursor:
        cursor.execute("SELECT pg_get_serial_sequence('audit_auditquarantine', 'id')")
        sequence = cursor.fetchone()[0]
    run(f"GRANT USAGE ON SEQUENCE {sequence} TO {ROLE}")
    run(f"GRANT UPDATE ON audit_auditchainhead TO {ROLE}")  # FOR UPDATE lock only
    for sql in (APPEND_ONLY, NEXT_ENTRY_ONLY, HEAD_GUARD, NO_TRUNCATE):
        run(sql, params=None)
    for sql in (_prune_function(schema), _quarantine_function(schema)):
        run(sql, params=None)
    for name in ("warden_audit_prune(uuid, bigint)", "warden_audit_quarantine(uuid, timestamptz)"):
        run(f"ALTER FUNCTION {name} OWNER TO {ROLE}")
    for table in ("audit_auditcheckpoint", "audit_auditquarantine"):
        run(
            f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
            "FOR EACH ROW EXECUTE FUNCTION warden_audit_append_only()"
        )
    run(
        "CREATE TRIGGER audit_auditentry_next_only BEFORE INSERT ON audit_auditentry "
        "FOR EACH ROW EXECUTE FUNCTION warden_audit_next_entry_only()"
    )
    run(
        "CREATE TRIGGER audit_auditchainhead_guard BEFORE INSERT OR UPDATE OR DELETE "
        "ON audit_auditchainhead FOR EACH ROW EXECUTE FUNCTION warden_audit_head_guard()"
    )
    for table in TRUNCATE_GUARDED:
        run(
            f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
            "FOR EACH STATEMENT EXECUTE FUNCTION warden_audit_no_truncate()"
        )


def uninstall(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    run = schema_editor.execute
    for table in TRUNCATE_GUARDED:
        run(f"DROP TRIGGER IF EXISTS {table}_no_truncate ON {table}")
    run("DROP TRIGGER IF EXISTS audit_auditchainhead_guard ON audit_auditchainhead")
    run("DROP TRIGGER IF EXISTS audit_auditentry_next_only ON audit_auditentry")
    for table in ("audit_auditcheckpoint", "audit_auditquarantine"):
        run(f"DROP TRIGGER IF EXISTS {table}_append_only ON {table}")
    for name in (
        "warden_audit_prune(uuid, bigint)",
        "warden_audit_quarantine(uuid, timestamptz)",
        "warden_audit_no_truncate()",
        "warden_audit_head_guard()",
        "warden_audit_next_entry_only()",
    ):
        run(f"DROP FUNCTION IF EXISTS {name}")
    # Back to migration 0002's function (its set_config door included).
    run(import_module("audit.migrations.0002_append_only_triggers").FUNCTION, params=None)


class Migration(migrations.Migration):
    dependencies = [("audit", "0005_entry_mac_checkpoints_quarantine")]

    operations = [migrations.RunPython(install, uninstall, elidable=False)]
