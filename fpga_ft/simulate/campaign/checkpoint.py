"""Campaign checkpoints: every finished chunk is one JSON line of ``<checkpoint>/<key>.jsonl``
(flushed and fsynced); a torn last line is ignored and cut off."""

from __future__ import annotations

import json
import os
from pathlib import Path

from fpga_ft.core.cache import cache_root

#: checkpoint files campaigns of this process used (an interrupted command names them)
CHECKPOINTS_USED: set = set()


def default_checkpoint_dir() -> Path:
    """``<design cache>/campaigns`` (``$FPGA_FT_CACHE`` or ``~/.cache/fpga-ft``)."""
    return cache_root() / "campaigns"


class Checkpoint:
    """Append-only JSON-lines record of finished chunks of one campaign."""

    def __init__(self, path: Path, key: str, header: dict):
        self.path = path
        self.key = key
        self.header = header
        self._fd: int | None = None

    def load(self) -> dict[int, dict]:
        """Finished chunks by index. Lines that do not parse (a torn last line after a
        kill), or that belong to another campaign, are ignored; a torn tail is cut off so
        that the next append starts on a fresh line."""
        done: dict[int, dict] = {}
        if not self.path.is_file():
            return done
        data = self.path.read_bytes()
        end = data.rfind(b"\n") + 1
        if end < len(data):  # torn last line: never completed, drop it
            with open(self.path, "r+b") as handle:
                handle.truncate(end)
                handle.flush()
                os.fsync(handle.fileno())
        for raw in data[:end].split(b"\n"):
            try:
                record = json.loads(raw)
            except ValueError:
                continue
            if isinstance(record, dict) and record.get("key") == self.key and isinstance(record.get("chunk"), int):
                done[record["chunk"]] = record
        return done

    def append(self, record: dict) -> None:
        if self._fd is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            new = not self.path.exists() or self.path.stat().st_size == 0
            self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            if new:
                self._write({"key": self.key, "campaign": self.header})
        self._write({"key": self.key, **record})

    def _write(self, record: dict) -> None:
        line = (json.dumps(record, separators=(",", ":")) + "\n").encode()
        os.write(self._fd, line)  # one write per line (O_APPEND), then fsync
        os.fsync(self._fd)

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def checkpoint_path(checkpoint, key: str) -> Path | None:
    if checkpoint is None or checkpoint is False:
        return None
    if checkpoint is True:
        return default_checkpoint_dir() / f"{key}.jsonl"
    path = Path(checkpoint)
    if path.suffix == ".jsonl":
        return path
    return path / f"{key}.jsonl"
