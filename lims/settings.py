"""Settings from the environment (LIMS_ prefix), refusing unsafe defaults outside dev."""

import os
import secrets
from functools import lru_cache
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

# Values that were ever published (in this repository's history): never a signing key.
PUBLIC_SECRETS = frozenset({"dev-only-secret-change-me-before-any-real-use"})
DEFAULT_SQLITE_PATH = Path("var") / "lims.db"
DEFAULT_SECRET_FILE = Path("var") / "secret_key"


class DemoRefused(RuntimeError):
    """Demo data (staff with the public demo password) asked for on a production database."""


def stored_secret(path: Path) -> str:
    """The signing key kept in ``path``, generated (0600, owner only) on first use."""
    try:
        return path.read_text(encoding="ascii").strip()
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(48)
    try:
        # O_EXCL: two processes starting at once agree on whichever key was written first.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text(encoding="ascii").strip()
    with os.fdopen(fd, "w", encoding="ascii") as out:
        out.write(key + "\n")
    return key


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="LIMS_", env_file=".env", extra="ignore")

    environment: Literal["dev", "test", "production"] = "dev"
    database_url: str = f"sqlite:///{DEFAULT_SQLITE_PATH}"
    # Empty: outside production, a random key generated once and kept in secret_key_file.
    secret_key: str = ""
    secret_key_file: Path = DEFAULT_SECRET_FILE
    # /docs, /redoc and /openapi.json for anyone; None: on in dev and test, off in production.
    public_api_docs: bool | None = None
    # ISBT 128 Facility Identification Number: one letter then four alphanumerics.
    # "X" is not a real FIN prefix, so demo ids can never be mistaken for a licensed site's.
    facility_code: str = "X0001"
    facility_name: str = "Demo Cell Processing Facility"
    # The lab's own time zone (IANA name): the lab's pages show times in it; a clinic's
    # pages use the clinic's zone. Stored times are UTC whatever this says.
    lab_time_zone: str = "UTC"
    # SQLite waits this long for a writer's lock before reporting "database is locked".
    sqlite_busy_timeout_ms: int = 15000
    # Sign-in throttling (NIST SP 800-63B 5.2.2): wrong passwords a client (or an account)
    # may make before it has to wait; the first wait, doubled at each further failure up
    # to lockout_minutes (an account's: to an hour, kept a day, see lims.auth.throttle);
    # a client's failures older than lockout_minutes are forgotten. E-signatures:
    # max_password_failures wrong re-entries by the signed-in user lock the account for
    # lockout_minutes (21 CFR 11.300(d)).
    max_password_failures: int = 5
    max_account_failures: int = 20
    sign_in_backoff_seconds: int = 60
    lockout_minutes: int = 15
    min_password_length: int = 12
    # How far ahead a dose may be ordered: a course of 6 sessions every 3-5 weeks
    # (domain.md 0 [3]) spans about 30 weeks; [I] half a year.
    dose_max_days_ahead: int = 183
    # How long the API keeps an Idempotency-Key's first answer (the nightly maintenance
    # forgets older ones); a client retries within minutes, an audit never needs them.
    idempotency_retention_days: int = Field(default=30, ge=1, le=3650)
    # argon2id cost (argon2-cffi defaults); tests lower it, production refuses less than
    # OWASP's minimum (19 MiB, 2 passes).
    argon2_time_cost: int = 3
    argon2_memory_kib: int = 65536
    # Bearer token for /metrics; unset: /metrics open in dev and test, refused in production.
    metrics_token: str = ""

    @property
    def production(self) -> bool:
        return self.environment == "production"

    @property
    def api_docs(self) -> bool:
        return not self.production if self.public_api_docs is None else self.public_api_docs

    @model_validator(mode="after")
    def _refuse_unsafe_defaults(self) -> "Settings":
        if not self.secret_key:
            if self.production:
                raise ValueError("LIMS_SECRET_KEY must be set to a real secret in production")
            self.secret_key = stored_secret(self.secret_key_file)
        if self.secret_key in PUBLIC_SECRETS:
            raise ValueError("LIMS_SECRET_KEY is a published value: set a secret of your own")
        if len(self.secret_key) < 32:
            raise ValueError("LIMS_SECRET_KEY needs at least 32 characters (HS256 key)")
        if self.production and (self.argon2_memory_kib < 19456 or self.argon2_time_cost < 2):
            raise ValueError("argon2 cost below OWASP's minimum (19 MiB, 2 passes)")
        if self.production and self.database_url.startswith("sqlite"):
            raise ValueError("production runs on PostgreSQL: set LIMS_DATABASE_URL")
        try:
            ZoneInfo(self.lab_time_zone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"LIMS_LAB_TIME_ZONE must be an IANA name such as Asia/Tokyo, "
                f"got {self.lab_time_zone!r}"
            ) from None
        code = self.facility_code
        if len(code) != 5 or not code[0].isalpha() or not code.isalnum() or not code.isupper():
            raise ValueError(
                f"LIMS_FACILITY_CODE must be one capital letter and four capital letters or "
                f"digits (ISBT 128 FIN), got {code!r}"
            )
        return self


@lru_cache
def get_settings() -> Settings:
    """Return the process-wide settings (read once from the environment)."""
    return Settings()


def refuse_demo_data() -> None:
    """Raise DemoRefused in production: the demo creates staff with a public password."""
    if get_settings().production:
        raise DemoRefused(
            "LIMS_ENVIRONMENT=production: demo data (staff with the public demo password) "
            "is never loaded into a production database"
        )


DEFAULT_CHECKPOINT_KEY_FILE = Path("var") / "checkpoint_key"


class CheckpointSettings(BaseSettings):
    """The custody checkpoints' signing key and cadence (lims.custody.keys reads the key)."""

    model_config = SettingsConfigDict(env_prefix="LIMS_", env_file=".env", extra="ignore")

    environment: Literal["dev", "test", "production"] = "dev"
    # The lab's Ed25519 key as PEM (PKCS#8), or the path of a PEM file. Empty outside
    # production: generated once into checkpoint_key_file (0600).
    checkpoint_key: str = ""
    checkpoint_key_file: Path = DEFAULT_CHECKPOINT_KEY_FILE
    # A checkpoint is due once this many events were appended after the last one.
    checkpoint_every: int = 1000
    # An RFC 3161 time-stamping authority for every checkpoint; empty: none. A TSA that is
    # down never blocks a checkpoint: it stays pending and is sent again later.
    tsa_url: str = ""
    tsa_timeout_seconds: float = 5.0

    @model_validator(mode="after")
    def _refuse_missing_key(self) -> "CheckpointSettings":
        if self.environment == "production" and not self.checkpoint_key:
            raise ValueError("LIMS_CHECKPOINT_KEY must be set in production (PEM or a file path)")
        if self.checkpoint_every < 1:
            raise ValueError("LIMS_CHECKPOINT_EVERY must be at least 1")
        return self


@lru_cache
def get_checkpoint_settings() -> CheckpointSettings:
    """Return the checkpoint settings (read once from the environment)."""
    return CheckpointSettings()


class NotificationSettings(BaseSettings):
    """Webhook and e-mail delivery to clinics (lims.notifications)."""

    model_config = SettingsConfigDict(env_prefix="LIMS_", env_file=".env", extra="ignore")

    environment: Literal["dev", "test", "production"] = "dev"
    # Webhook targets on loopback, link-local or private addresses (and plain http) are
    # refused (SSRF) unless this is on; tests turn it on for a receiver on 127.0.0.1.
    # Production refuses it.
    webhook_allow_private_targets: bool = False
    webhook_timeout_seconds: float = 10.0
    # After a rotation the old secret keeps signing this long, beside the new one.
    webhook_secret_overlap_hours: float = 24.0
    # An endpoint failing this many times in a row is disabled and the clinic is e-mailed.
    webhook_disable_after_failures: int = 20
    # Retries: base * 2**(attempt-1), capped, until max attempts; then the delivery is DEAD
    # (manual redelivery puts it back).
    retry_base_seconds: float = 30.0
    retry_max_seconds: float = 6 * 3600.0
    max_attempts: int = 15
    # A worker's claim on a delivery; a killed worker's deliveries are sent again after it.
    claim_seconds: float = 120.0
    # Empty smtp_host: e-mails stay PENDING in the outbox (nothing is lost, nothing is sent).
    smtp_host: str = ""
    smtp_port: int = 25
    smtp_starttls: bool = False
    smtp_user: str = ""
    smtp_password: str = ""
    mail_from: str = "lims@lab.invalid"

    @model_validator(mode="after")
    def _refuse_unsafe(self) -> "NotificationSettings":
        if self.environment == "production" and self.webhook_allow_private_targets:
            raise ValueError("LIMS_WEBHOOK_ALLOW_PRIVATE_TARGETS is refused in production (SSRF)")
        if self.max_attempts < 1 or self.retry_base_seconds <= 0 or self.claim_seconds <= 0:
            raise ValueError("notification retries need max_attempts >= 1 and positive times")
        return self


@lru_cache
def get_notification_settings() -> NotificationSettings:
    """Return the notification settings (read once from the environment)."""
    return NotificationSettings()
