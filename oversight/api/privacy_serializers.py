"""The privacy summary's response, for the schema (oversight.privacy builds it)."""

from rest_framework import serializers

# --- privacy summary (oversight.privacy.privacy_summary_build) ------------------------


class PrivacyWorkspaceRefSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    slug = serializers.CharField()
    name = serializers.CharField()


class PrivacyChainHeadSerializer(serializers.Serializer):
    seq = serializers.IntegerField()
    hash = serializers.CharField()


class PrivacyDataClassFiguresSerializer(serializers.Serializer):
    tools = serializers.IntegerField()
    action_requests = serializers.IntegerField()


class PrivacyRetentionSerializer(serializers.Serializer):
    audit_retention_days = serializers.IntegerField(allow_null=True)
    confirmation_ttl_seconds = serializers.IntegerField()
    plain_copy_retention_days = serializers.IntegerField(
        allow_null=True,
        help_text="Days plain copies of params and outputs are kept (null: forever); "
        "their SHA-256 digest and size are kept for good.",
    )
    max_output_copy_bytes = serializers.IntegerField(
        help_text="Larger outputs are kept as digest and size only."
    )


class PrivacyPlainCopiesSerializer(serializers.Serializer):
    action_requests_with_plain_copy = serializers.IntegerField()
    action_requests_digests_only = serializers.IntegerField()


class PrivacyUnreportedResultsSerializer(serializers.Serializer):
    window_minutes = serializers.IntegerField(
        allow_null=True, help_text="The workspace's window; null: the check is off."
    )
    flagged = serializers.IntegerField(help_text="Allowed actions with no reported result.")
    open = serializers.IntegerField(help_text="Of those, exception records still open.")


class PrivacySecretParamsSerializer(serializers.Serializer):
    tool = serializers.CharField()
    params = serializers.ListField(child=serializers.CharField())


class PrivacyErasureSerializer(serializers.Serializer):
    action_requests_erased = serializers.IntegerField(
        help_text="Agent requests whose data key was destroyed."
    )
    tools_with_subject_param = serializers.ListField(
        child=serializers.CharField(), help_text="Tools naming a data-subject parameter."
    )
    entries_with_plain_values = serializers.IntegerField(
        help_text="Audit entries written before encryption that still quote parameters."
    )


class PrivacyStoredSerializer(serializers.Serializer):
    counts = serializers.DictField(
        child=serializers.IntegerField(), help_text="Rows per kind of record."
    )
    by_data_class = serializers.DictField(child=PrivacyDataClassFiguresSerializer())
    retention = PrivacyRetentionSerializer()
    plain_copies = PrivacyPlainCopiesSerializer(
        help_text="Agent requests holding a plain copy of their params, and pruned ones."
    )
    unreported_results = PrivacyUnreportedResultsSerializer()
    erasure = PrivacyErasureSerializer()
    key_secrets = serializers.CharField()
    secret_params = PrivacySecretParamsSerializer(many=True)


class PrivacySharingSerializer(serializers.Serializer):
    opted_in = serializers.BooleanField()
    shared = serializers.ListField(child=serializers.CharField())
    text = serializers.CharField()


class PrivacyPermissionSerializer(serializers.Serializer):
    codename = serializers.CharField()
    description = serializers.CharField()


class PrivacyRoleAccessSerializer(serializers.Serializer):
    role = serializers.CharField()
    label = serializers.CharField()
    members = serializers.IntegerField()
    permissions = PrivacyPermissionSerializer(many=True)


class PrivacyAccessSerializer(serializers.Serializer):
    roles = PrivacyRoleAccessSerializer(many=True)
    keys_with_audit_read = serializers.IntegerField()


class PrivacySectionSerializer(serializers.Serializer):
    title = serializers.CharField()
    paragraphs = serializers.ListField(child=serializers.CharField())


class PrivacyConnectorSerializer(serializers.Serializer):
    name = serializers.CharField()
    host = serializers.CharField()
    enabled = serializers.BooleanField()
    tools = serializers.IntegerField()
    sends = serializers.CharField()


class PrivacyWebhookSerializer(serializers.Serializer):
    name = serializers.CharField()
    host = serializers.CharField()
    active = serializers.BooleanField()
    events = serializers.ListField(child=serializers.CharField())
    sends = serializers.CharField()


class PrivacyExportSerializer(serializers.Serializer):
    kind = serializers.CharField()
    host = serializers.CharField()
    active = serializers.BooleanField()
    sends = serializers.CharField()


class PrivacyDestinationsSerializer(serializers.Serializer):
    """Every place outside Warden this workspace's data can go, and what goes there."""

    connectors = PrivacyConnectorSerializer(many=True)
    webhooks = PrivacyWebhookSerializer(many=True)
    exports = PrivacyExportSerializer(many=True)
    outbound_hosts = serializers.ListField(child=serializers.CharField())


class PrivacySummarySerializer(serializers.Serializer):
    """The privacy summary as data; `sections` is the same text as the HTML and PDF."""

    version = serializers.IntegerField()
    workspace = PrivacyWorkspaceRefSerializer()
    generated_at = serializers.DateTimeField()
    audit_chain_head = PrivacyChainHeadSerializer()
    stored = PrivacyStoredSerializer()
    anonymized_sharing = PrivacySharingSerializer()
    never_leaves = serializers.ListField(child=serializers.CharField())
    access = PrivacyAccessSerializer()
    destinations = PrivacyDestinationsSerializer()
    sections = PrivacySectionSerializer(many=True)
