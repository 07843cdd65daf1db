"""Print the public half of the audit signing key: `python manage.py audit_public_key`.

Hand it to whoever verifies checkpoints offline (docs "Evidence: threat model"); the
private key never leaves the environment it was configured in."""

from django.core.management.base import BaseCommand

from audit import signing


class Command(BaseCommand):
    help = "Print the Ed25519 public key (base64) that verifies audit checkpoints."

    def add_arguments(self, parser):
        parser.add_argument("--pem", action="store_true", help="PEM (SubjectPublicKeyInfo)")

    def handle(self, *args, pem=False, **options):
        if pem:
            self.stdout.write(signing.public_key_pem().rstrip("\n"))
        else:
            self.stdout.write(signing.public_key_b64())
        self.stderr.write(f"key id {signing.key_id()}")
