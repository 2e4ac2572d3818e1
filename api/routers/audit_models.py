"""The auditor's answers as typed models: custody events as they are hashed, signed
checkpoints (RFC 9162 tree heads), inclusion and consistency proofs.

Built from the dictionaries lims.custody makes (the same ones the offline verifier reads),
so the typed answer and the saved file cannot drift; a checkpoint without an RFC 3161
timestamp leaves the field out, as before.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, JsonValue


class CustodyEventOut(BaseModel):
    """One custody event, field for field as hashed (docs/custody.md)."""

    model_config = ConfigDict(populate_by_name=True)

    seq: int
    prev_hash: str
    hash: str
    occurred_at: str = Field(description="UTC, RFC 3339, exactly as hashed")
    actor: str
    actor_role: str
    action: str
    entity: str
    entity_id: str
    materials: list[str]
    from_: str | None = Field(alias="from")
    to: str | None
    reason: str | None
    old: dict[str, JsonValue] | None = Field(description="the record's values before")
    new: dict[str, JsonValue] | None = Field(description="the record's values after")
    corrects_seq: int | None


class TimestampOut(BaseModel):
    tsa_url: str
    stamped_at: str
    digest: str = Field(description="SHA-256 (hex) of the checkpoint's signed bytes")
    response: str = Field(description="the RFC 3161 TimeStampResp, base64 DER")


class CheckpointOut(BaseModel):
    """A signed tree head, as an auditor saves it for python -m lims.custody.verify."""

    format: str
    id: int
    tree_size: int
    root_hash: str
    last_hash: str
    made_at: str
    key_id: str
    signature: str = Field(description="Ed25519 over the signed bytes, hex")
    public_key: str = Field(description="the lab's checkpoint key, PEM")
    timestamp: TimestampOut | None = Field(
        default=None, description="absent until the time-stamping authority has answered"
    )


class InclusionProofOut(BaseModel):
    seq: int
    leaf_index: int
    hash: str
    canonical: str = Field(description="the event's canonical bytes (UTF-8 JSON), as hashed")
    proof: list[str] = Field(description="RFC 9162 audit path, hex, leaf to root")
    checkpoint: CheckpointOut


class TreeHeadOut(BaseModel):
    id: int
    tree_size: int
    root_hash: str


class ConsistencyProofOut(BaseModel):
    first: TreeHeadOut
    second: TreeHeadOut
    proof: list[str] = Field(description="RFC 9162 consistency proof, hex")
