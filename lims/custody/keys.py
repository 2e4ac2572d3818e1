"""The lab's Ed25519 checkpoint key: from LIMS_CHECKPOINT_KEY (PEM or a file path), or
generated once into LIMS_CHECKPOINT_KEY_FILE (mode 0600) outside production."""

from __future__ import annotations

import os
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from lims.custody.verify import key_id_of
from lims.settings import CheckpointSettings, get_checkpoint_settings


def _load_pem(pem: bytes, where: str) -> Ed25519PrivateKey:
    key = serialization.load_pem_private_key(pem, password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise ValueError(f"{where} is not an Ed25519 private key")
    return key


def _stored_key(path: Path) -> Ed25519PrivateKey:
    try:
        return _load_pem(path.read_bytes(), str(path))
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    pem = private_pem(Ed25519PrivateKey.generate())
    try:
        # O_EXCL: two processes starting at once agree on whichever key was written first.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return _load_pem(path.read_bytes(), str(path))
    with os.fdopen(fd, "wb") as out:
        out.write(pem)
    return _load_pem(pem, str(path))


def checkpoint_key(settings: CheckpointSettings | None = None) -> Ed25519PrivateKey:
    """The lab's signing key as the settings give it."""
    settings = settings or get_checkpoint_settings()
    given = settings.checkpoint_key.strip()
    if given.startswith("-----BEGIN"):
        return _load_pem(given.encode("ascii"), "LIMS_CHECKPOINT_KEY")
    if given:
        return _load_pem(Path(given).read_bytes(), given)
    if settings.environment == "production":
        raise ValueError("LIMS_CHECKPOINT_KEY must be set in production")
    return _stored_key(settings.checkpoint_key_file)


def private_pem(key: Ed25519PrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def public_pem(key: Ed25519PrivateKey) -> str:
    """The public half as PEM (SubjectPublicKeyInfo), what auditors pin."""
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode("ascii")
    )


def key_id(key: Ed25519PrivateKey) -> str:
    raw = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return key_id_of(raw)
