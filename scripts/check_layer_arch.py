"""After `sam build`: every compiled library in the built layer is for arm64 (the functions' architecture), and every
wheel it came from says so. pip on an x86_64 machine fetches x86_64 wheels unless told otherwise; a layer with one
would import fine here and fail on Lambda with "invalid ELF header" at the first cold start.

Usage: python scripts/check_layer_arch.py .aws-sam/ci-build/CommonLayer
"""

from __future__ import annotations

import sys
from pathlib import Path

EM_AARCH64 = 0xB7  # ELF e_machine


def elf_machine(path: Path) -> int | None:
    """The ELF file's machine, or None for a file that is not ELF."""
    with path.open("rb") as f:
        header = f.read(20)
    if len(header) < 20 or header[:4] != b"\x7fELF":
        return None
    return int.from_bytes(header[18:20], "little" if header[5] == 1 else "big")


def problems(layer: Path) -> list[str]:
    found = []
    libraries = [p for p in layer.rglob("*") if p.is_file() and (p.suffix == ".so" or ".so." in p.name)]
    for library in libraries:
        machine = elf_machine(library)
        if machine is not None and machine != EM_AARCH64:
            found.append(f"{library.relative_to(layer)}: ELF machine {machine:#x}, not aarch64")
    for wheel in layer.rglob("*.dist-info/WHEEL"):
        tags = [line.split(":", 1)[1].strip() for line in wheel.read_text().splitlines() if line.startswith("Tag:")]
        foreign = [t for t in tags if not (t.endswith("-any") or "aarch64" in t or "arm64" in t)]
        if foreign:
            found.append(f"{wheel.parent.name}: built for {', '.join(foreign)}")
    return found


def main(path: str) -> int:
    layer = Path(path)
    if not layer.is_dir():
        print(f"no built layer at {layer}")
        return 1
    found = problems(layer)
    for problem in found:
        print(problem)
    compiled = sum(1 for p in layer.rglob("*.so*") if p.is_file() and elf_machine(p) is not None)
    print(f"layer architecture: {'ok' if not found else 'WRONG'} ({compiled} compiled libraries, all checked)")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else ".aws-sam/ci-build/CommonLayer"))
