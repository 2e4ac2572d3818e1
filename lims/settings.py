"""Settings from the environment (LIMS_ prefix), refusing unsafe defaults outside dev."""

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEV_SECRET = "dev-only-secret-change-me-before-any-real-use"
DEFAULT_SQLITE_PATH = Path("var") / "lims.db"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="LIMS_", env_file=".env", extra="ignore")

    environment: Literal["dev", "test", "production"] = "dev"
    database_url: str = f"sqlite:///{DEFAULT_SQLITE_PATH}"
    secret_key: str = DEV_SECRET
    # ISBT 128 Facility Identification Number: one letter then four alphanumerics.
    # "X" is not a real FIN prefix, so demo ids can never be mistaken for a licensed site's.
    facility_code: str = "X0001"
    facility_name: str = "Demo Cell Processing Facility"
    # SQLite waits this long for a writer's lock before reporting "database is locked".
    sqlite_busy_timeout_ms: int = 15000
    # Part 11 signing: wrong passwords before the account locks, and for how long.
    max_password_failures: int = 5
    lockout_minutes: int = 15
    min_password_length: int = 12
    # argon2id cost (argon2-cffi defaults); tests lower it, production refuses less than
    # OWASP's minimum (19 MiB, 2 passes).
    argon2_time_cost: int = 3
    argon2_memory_kib: int = 65536

    @model_validator(mode="after")
    def _refuse_unsafe_defaults(self) -> "Settings":
        if self.environment == "production" and self.secret_key == DEV_SECRET:
            raise ValueError("LIMS_SECRET_KEY must be set to a real secret in production")
        if len(self.secret_key) < 32:
            raise ValueError("LIMS_SECRET_KEY needs at least 32 characters (HS256 key)")
        if self.environment == "production" and (
            self.argon2_memory_kib < 19456 or self.argon2_time_cost < 2
        ):
            raise ValueError("argon2 cost below OWASP's minimum (19 MiB, 2 passes)")
        if self.environment == "production" and self.database_url.startswith("sqlite"):
            raise ValueError("production runs on PostgreSQL: set LIMS_DATABASE_URL")
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
