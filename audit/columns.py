"""What an audit entry says, declared once: the columns a chain entry and a queued
entry (audit group commit) share. `AuditEntry` and `AuditPending` inherit them, and
every list of entry columns (what is chained, what a queued entry's MAC covers, what
the writers insert) is derived from `ENTRY_COLUMNS`, so a new column is added here and
nowhere else. (The chain's own columns, seq and the hashes, and the workspace stay on
each model: they differ between the two.)"""

from django.db import models


class EntryColumns(models.Model):
    actor = models.CharField(max_length=254)  # "user:<email>", "key:<id>", "system:<name>"
    actor_type = models.CharField(max_length=8)  # "user" | "key" | "system": indexed prefix
    # An open set (new actions come with new features): AuditAction lists the known ones.
    action = models.CharField(max_length=48)
    target_type = models.CharField(max_length=48, blank=True)
    target_id = models.CharField(max_length=64, blank=True)
    tool = models.CharField(max_length=200, blank=True)
    input = models.JSONField(default=dict, blank=True)
    decision = models.CharField(max_length=32, blank=True)
    rationale = models.TextField(blank=True)
    policy_version = models.PositiveIntegerField(null=True, blank=True)
    request_id = models.CharField(max_length=64, blank=True)
    client_ip = models.GenericIPAddressField(null=True, blank=True)
    outcome = models.CharField(max_length=32, blank=True)

    class Meta:
        abstract = True
        app_label = "audit"


# created_at (a column of each model: the chain's has a default, the queue's has none)
# first, then the shared columns in declaration order.
ENTRY_COLUMNS: tuple[str, ...] = (
    "created_at",
    *(field.name for field in EntryColumns._meta.fields),
)
# The one entry column outside the hash (an index prefix derived from `actor`).
UNCHAINED_COLUMNS = frozenset({"actor_type"})
