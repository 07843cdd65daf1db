import copy
from collections.abc import Mapping

from django.utils.functional import cached_property
from rest_framework import serializers
from rest_framework.utils.serializer_helpers import BindingDict

from common.scoping import CLIENT_WORKSPACE_FIELDS


def declared(field: serializers.Field, **schema) -> serializers.Field:
    """The field, with the rule a service enforces on it stated in the OpenAPI schema
    too (a `pattern`, an `enum`...), so the schema accepts only what the server does
    (common.api.schema merges `schema_extra` into the field's schema)."""
    # A subclass, not an attribute: DRF rebuilds each field from its arguments per use.
    # Copied as DRF's Field.__deepcopy__ does (a child field is bound to its parent).
    declared_class = type(type(field).__name__, (type(field),), {"schema_extra": schema})
    args = [copy.deepcopy(value) for value in field._args]
    kwargs = {
        key: value if key in ("validators", "regex") else copy.deepcopy(value)
        for key, value in field._kwargs.items()
    }
    return declared_class(*args, **kwargs)


class StrictSerializer(serializers.Serializer):
    """Fields not declared here are refused with 400 validation_error naming them."""

    # The base of every request body (its docstring is the schema's description). A
    # dropped field is a silent lie: a key created with "tools" instead of
    # "tool_allowlist" would do nothing, with 201.

    def to_internal_value(self, data):
        if isinstance(data, Mapping):
            unknown = sorted(set(data) - set(self.fields) - set(CLIENT_WORKSPACE_FIELDS))
            if unknown:
                raise serializers.ValidationError(
                    {str(name)[:100]: ["Unknown field."] for name in unknown[:20]}
                )
        return super().to_internal_value(data)


class SharedFieldsMixin:
    """A serializer on a hot path whose fields are built and bound once per class
    instead of per instance (DRF deep-copies every declared field, or derives them
    from model metadata, for each instance: more than the rest of the work).

    Validation and representation are DRF's own, field by field, so values and errors
    are unchanged. Only for serializers whose fields keep no per-request state and read
    no context: no nested writable serializers, no partial use, no context-reading
    defaults, validators or method fields."""

    @cached_property
    def fields(self):
        cls = type(self)
        shared = cls.__dict__.get("_shared_fields")
        if shared is None:
            prototype = cls()  # what the fields are bound to: not partial, no context
            shared = BindingDict(prototype)
            for name, field in prototype.get_fields().items():
                shared[name] = field
            prototype.__dict__["fields"] = shared
            cls._shared_fields = shared
        return shared


class SharedFieldsSerializer(SharedFieldsMixin, StrictSerializer):
    """A flat request body validated on a hot path (POST /actions)."""


class ChangeReasonSerializer(StrictSerializer):
    """Why a change is made, for requests that carry nothing else (a DELETE)."""

    reason = serializers.CharField(
        max_length=2000,
        required=False,
        allow_blank=True,
        default="",
        help_text="Why (required, not blank: 400 reason_required otherwise); recorded in "
        "the change's version log. Also accepted as the `reason` query parameter.",
    )


def change_reason(request) -> str:
    """The reason sent with a body-less change: the JSON body's `reason` or `?reason=`.
    Not checked here: audit.services.require_reason is the one rule."""
    data = request.data if hasattr(request.data, "keys") and request.data else {}
    body = ChangeReasonSerializer(data=data)
    body.is_valid(raise_exception=True)
    return body.validated_data["reason"] or request.query_params.get("reason", "")
