"""GET /openapi.json: the OpenAPI 3.1 description of every endpoint, kept beside the code in openapi.json."""

from __future__ import annotations

from functools import cache
from importlib.resources import files

from flask import Blueprint, Response

api_description = Blueprint("api_description", __name__)


@cache
def document() -> bytes:
    return files("service").joinpath("openapi.json").read_bytes()


@api_description.get("/openapi.json")
def openapi() -> Response:
    return Response(document(), mimetype="application/json")
