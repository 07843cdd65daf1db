from drf_spectacular.extensions import OpenApiAuthenticationExtension

from common.api.views import KEY


class MachineKeyAuthenticationScheme(OpenApiAuthenticationExtension):
    target_class = "keys.authentication.MachineKeyAuthentication"
    name = "machineKey"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "wdn_<prefix>_<secret>",
            "description": "A Warden machine key, shown once at creation.",
        }

    def get_security_requirement(self, auto_schema):
        """Only on operations a key may call (humans-only ones list the session alone)."""
        if KEY not in getattr(auto_schema.view, "principals", (KEY,)):
            return None
        return {self.name: []}
