from django.apps import AppConfig


class KeysConfig(AppConfig):
    name = "keys"

    def ready(self):
        from keys import schema  # noqa: F401 - registers the OpenAPI auth scheme
        from keys.services import keys_revoke_for_departed_member
        from tenants.signals import member_removed

        member_removed.connect(
            keys_revoke_for_departed_member, dispatch_uid="keys.revoke_for_departed_member"
        )
