"""Writes layers/common/agent_core/openapi.json: the whole API's OpenAPI document, built from every function's app.

Usage: python scripts/openapi.py [--check]   (--check: exit 1 when the committed document is out of date)
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "layers" / "common"), str(ROOT)]


def generated() -> str:
    from agent_core.openapi import build
    from devserver.gateway import load_handler
    from devserver.template import Template

    apps = {}
    for route in Template().routes():
        load_handler(route)  # imports the function's module as Lambda would, under a name of its own
        module = sys.modules[f"_function_{route.function}_{route.handler.rsplit('.', 1)[0]}"]
        if hasattr(module, "app"):  # the console's function serves files, no operation of the API
            apps[route.function] = module.app
    return json.dumps(build([apps[name] for name in sorted(apps)]), indent=1, ensure_ascii=False) + "\n"


def main() -> int:
    from agent_core.openapi import DOCUMENT

    text = generated()
    if "--check" in sys.argv:
        current = DOCUMENT.read_text(encoding="utf-8") if DOCUMENT.exists() else ""
        if current != text:
            print(f"{DOCUMENT.relative_to(ROOT)} is out of date: run python scripts/openapi.py", file=sys.stderr)
            return 1
        return 0
    DOCUMENT.write_text(text, encoding="utf-8")
    print(f"wrote {DOCUMENT.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
