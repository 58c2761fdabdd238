"""The API. Every answer says which machine and packages produced it, so the image tests can check them."""

from __future__ import annotations

import importlib.metadata
import platform

from fastapi import FastAPI
from pydantic import BaseModel, Field

app = FastAPI(title="fastapi_service")


class Item(BaseModel):
    name: str = Field(min_length=1)
    quantity: int = Field(ge=1)


def versions() -> dict[str, str]:
    return {name: importlib.metadata.version(name) for name in ("fastapi", "pydantic", "uvicorn")}


@app.get("/hello")
def hello(name: str = "world") -> dict[str, object]:
    return {"message": f"hello, {name}", "machine": platform.machine(), "packages": versions()}


@app.post("/items")
def create_item(item: Item) -> dict[str, object]:
    return {"name": item.name, "quantity": item.quantity, "total": item.quantity * 2}
