"""Write the API's OpenAPI document to openapi.json (the test suite checks it is current)."""

from __future__ import annotations

import json
from pathlib import Path

from api.main import create_app

if __name__ == "__main__":
    out = Path(__file__).resolve().parents[1] / "openapi.json"
    out.write_text(json.dumps(create_app().openapi(), indent=2, ensure_ascii=False) + "\n")
    print(f"wrote {out}")
