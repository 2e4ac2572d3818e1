"""The API benchmark's baseline: a bare FastAPI + SQLModel endpoint doing one INSERT.

    python -m uvicorn --factory bench.bare_app:create_app ...   (LIMS_DATABASE_URL)

Same database, same engine settings (``lims.db.make_engine``: SQLite WAL, busy timeout,
PostgreSQL pool) and the same uvicorn options as the LIMS API in the benchmark; no
authentication, no validation beyond the body model, no ledger.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from fastapi import FastAPI
from pydantic import BaseModel
from sqlmodel import Field, Session, SQLModel

from lims.db import make_engine


class BenchItem(SQLModel, table=True):
    __tablename__ = "bench_item"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=100)
    quantity: Decimal = Field(max_digits=38, decimal_places=12)
    created_at: datetime


class ItemIn(BaseModel):
    name: str
    quantity: Decimal


def create_app() -> FastAPI:
    engine = make_engine()
    BenchItem.metadata.create_all(engine, tables=[BenchItem.__table__])  # type: ignore[list-item]
    app = FastAPI()

    @app.post("/items", status_code=201)
    def create_item(body: ItemIn) -> dict[str, object]:
        with Session(engine) as session:
            item = BenchItem(name=body.name, quantity=body.quantity, created_at=datetime.now(UTC))
            session.add(item)
            session.commit()
            return {"id": item.id, "name": item.name}

    @app.get("/health")
    def health() -> dict[str, str]:
        return {"status": "ok"}

    return app
