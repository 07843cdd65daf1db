from drf_spectacular.extensions import OpenApiAuthenticationExtension


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
