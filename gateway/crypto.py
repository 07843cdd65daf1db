"""Connector credentials are encrypted with the one scheme in common.crypto."""

from common.crypto import SecretUnreadable, decrypt, encrypt, reencrypt

__all__ = ["SecretUnreadable", "decrypt", "encrypt", "reencrypt"]
