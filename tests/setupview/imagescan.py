"""Find image data in files by content (magic numbers), not by name: JPEG, PNG, BMP, GIF, WebP, base64 JPEG/PNG."""

from __future__ import annotations

import re
from pathlib import Path

# At the start of a file: the format's magic. Anywhere inside (a blob in SQLite, a cache entry):
# long enough patterns that random bytes of a model file do not match them by chance.
STARTS = (b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n", b"GIF87a", b"GIF89a")
INSIDE = re.compile(
    rb"\xff\xd8\xff[\xe0\xe1\xdb\xee]"  # JPEG SOI + JFIF/Exif/DQT/Adobe (cv2.imencode writes JFIF)
    rb"|\x89PNG\r\n\x1a\n"
    rb"|BM.{4}\x00\x00\x00\x00[\x36\x7a\x8a]\x00\x00\x00"  # BMP file header with a usual pixel offset
    rb"|RIFF.{4}WEBP"
    rb"|/9j/4|iVBORw0KGgo"  # base64 JPEG (JFIF/Exif) and PNG
    rb"|data:image/",
    re.DOTALL,
)


def image_files(*folders: Path) -> list[str]:
    """Every file under the folders whose content holds image data, as 'path: why'."""
    found = []
    for folder in folders:
        for p in sorted(folder.rglob("*")):
            if not p.is_file() or p.is_symlink():
                continue
            try:
                data = p.read_bytes()
            except OSError:
                continue
            if data.startswith(STARTS) or (data.startswith(b"BM") and len(data) > 26):
                found.append(f"{p}: starts with an image magic number")
            elif INSIDE.search(data):
                found.append(f"{p}: holds an image signature")
    return found
