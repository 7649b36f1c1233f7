"""The key material of an instance in a backup: encrypted at rest with the operator's passphrase.

Everything signed or keyed with the secret key dies with it: login cookies, personal calendar feed addresses,
speaker invitation links, confirmation and password links, unsubscribe links. So a backup that is to restore a
*working* instance must carry the key, and a backup lying on some disk must not hand it to whoever reads it:
the key is sealed with AES-256-GCM under a key derived from the passphrase with scrypt (n=2^15, r=8, p=1; about
0.1 s and 32 MB per try). The passphrase itself is never stored.
"""

from __future__ import annotations

import base64
import json
import os
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

SECRETS_FILE = "secrets.enc"
SCHEME = "scrypt-aes256gcm"
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**15, 8, 1
PASSPHRASE_MIN_LENGTH = 12
#: Bound to the ciphertext: a sealed file of another program (or another format) cannot pass as ours.
ASSOCIATED_DATA = b"conference-backup-secrets-v1"


class SecretsError(Exception):
    """Sealing or opening the key material failed; the message says why, for the operator."""


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _derive(passphrase: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return Scrypt(salt=salt, length=32, n=n, r=r, p=p).derive(passphrase.encode("utf-8"))


def check_passphrase(passphrase: str) -> str:
    """The passphrase without a trailing line break (files end with one); too short ones are refused."""
    passphrase = passphrase.rstrip("\r\n")
    if len(passphrase) < PASSPHRASE_MIN_LENGTH:
        raise SecretsError(f"the backup passphrase needs at least {PASSPHRASE_MIN_LENGTH} characters")
    return passphrase


def seal(material: dict[str, Any], passphrase: str) -> bytes:
    """The key material as a small JSON document: KDF parameters, salt, nonce and ciphertext."""
    salt, nonce = os.urandom(16), os.urandom(12)
    key = _derive(passphrase, salt, SCRYPT_N, SCRYPT_R, SCRYPT_P)
    plaintext = json.dumps(material, sort_keys=True).encode("utf-8")
    ciphertext = AESGCM(key).encrypt(nonce, plaintext, ASSOCIATED_DATA)
    document = {"scheme": SCHEME, "n": SCRYPT_N, "r": SCRYPT_R, "p": SCRYPT_P, "salt": _b64(salt),
                "nonce": _b64(nonce), "ciphertext": _b64(ciphertext)}
    return json.dumps(document, indent=1, sort_keys=True).encode("utf-8")


def unseal(data: bytes, passphrase: str) -> dict[str, Any]:
    """The key material, or SecretsError for a wrong passphrase or a damaged file (GCM tells them apart from
    nothing: either way nothing is restored)."""
    try:
        document = json.loads(data)
        if document.get("scheme") != SCHEME:
            raise SecretsError(f"unknown encryption scheme {document.get('scheme')!r}")
        n, r, p = int(document["n"]), int(document["r"]), int(document["p"])
        if not (2**10 <= n <= 2**20 and 1 <= r <= 32 and 1 <= p <= 16):  # a hostile file cannot ask for 100 GB
            raise SecretsError("implausible key derivation parameters")
        salt, nonce, ciphertext = (base64.b64decode(document[key], validate=True)
                                   for key in ("salt", "nonce", "ciphertext"))
    except (ValueError, KeyError, TypeError) as error:
        raise SecretsError(f"{SECRETS_FILE} is not readable: {error}") from None
    try:
        plaintext = AESGCM(_derive(passphrase, salt, n, r, p)).decrypt(nonce, ciphertext, ASSOCIATED_DATA)
    except (InvalidTag, ValueError):
        raise SecretsError("wrong passphrase, or the encrypted secrets are damaged") from None
    material = json.loads(plaintext)
    if not isinstance(material, dict) or not isinstance(material.get("secret_key"), str) \
            or not material["secret_key"]:
        raise SecretsError("the encrypted secrets hold no secret key")
    return material


def key_material(config: Any) -> dict[str, Any]:
    """Every key of the instance. Today that is the secret key (instance/secret_key or CONFERENCE_SECRET_KEY):
    sessions, feeds, invitations, mail links and demo tokens are all derived from it."""
    return {"secret_key": str(config["SECRET_KEY"])}
