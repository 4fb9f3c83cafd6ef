"""One bounded YAML reader for every YAML file fpga-ft takes from a user (plans, hls4ml
configs, boards): PyYAML's SafeLoader (no Python tags) plus limits that make hostile files
fail fast with a one-line :class:`FpgaFtError`:

* size: at most ``max_bytes`` bytes are read (default 1 MB);
* encoding: UTF-8 only;
* aliases (``*name``) are refused: fpga-ft's files never need them, and nested aliases
  expand exponentially ("billion laughs");
* nesting deeper than ``max_depth`` (default 32) levels is refused;
* a mapping that repeats a key is refused (YAML would silently keep the last value).

hls4ml's ``!keras_model PATH`` tag is read as the path string.
"""

from __future__ import annotations

from pathlib import Path

from fpga_ft.core.errors import FpgaFtError

MAX_BYTES = 1_000_000
MAX_DEPTH = 32


class _Refused(Exception):
    """A structural limit was hit (message: what, and where)."""


_LOADER = None


def _loader(max_depth: int):
    import yaml

    class Loader(yaml.SafeLoader):
        depth = 0

        def compose_node(self, parent, index):
            if self.check_event(yaml.events.AliasEvent):
                event = self.peek_event()
                raise _Refused(f"uses a YAML alias (*{event.anchor}) at line {event.start_mark.line + 1}; "
                               "write the values out")
            self.depth += 1
            try:
                if self.depth > max_depth:
                    mark = self.peek_event().start_mark
                    raise _Refused(f"is nested deeper than {max_depth} levels (line {mark.line + 1})")
                return super().compose_node(parent, index)
            finally:
                self.depth -= 1

        def construct_mapping(self, node, deep=False):
            seen = set()
            for key_node, _ in node.value:
                key = self.construct_object(key_node, deep=True)
                try:
                    duplicate = key in seen
                except TypeError:  # unhashable key: SafeLoader reports it
                    break
                if duplicate:
                    raise _Refused(f"repeats the key {key!r} (line {key_node.start_mark.line + 1})")
                seen.add(key)
            return super().construct_mapping(node, deep=deep)

    Loader.add_constructor("!keras_model", lambda loader, node: loader.construct_scalar(node))
    return Loader


def read_bounded(path, limit: int, what: str, hint: str = "") -> bytes:
    """The bytes of ``path``, refusing files over ``limit`` bytes (one-line errors)."""
    try:
        with open(path, "rb") as handle:
            raw = handle.read(limit + 1)
    except OSError as exc:
        raise FpgaFtError(f"cannot read {what} {path}: {exc.strerror or exc}") from None
    if len(raw) > limit:
        raise FpgaFtError(f"{what} {path} is larger than {limit / 1e6:g} MB{hint}")
    return raw


def load_yaml(path, what: str, *, max_bytes: int = MAX_BYTES, max_depth: int = MAX_DEPTH):
    """Parse the YAML file ``path`` (``what`` names it in errors, e.g. ``"plan"``)."""
    import yaml

    path = Path(path)
    if not path.is_file():
        raise FpgaFtError(f"cannot read {what} {path}: no such file")
    raw = read_bounded(path, max_bytes, what, f"; not an fpga-ft {what}")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise FpgaFtError(f"{what} {path} is not UTF-8 text (byte {exc.start})") from None
    try:
        return yaml.load(text, Loader=_loader(max_depth))  # noqa: S506 - a SafeLoader subclass
    except _Refused as exc:
        raise FpgaFtError(f"{what} {path} {exc}") from None
    except RecursionError:
        raise FpgaFtError(f"{what} {path} is nested too deeply") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise FpgaFtError(f"malformed {what} {path}{where}: not valid YAML ({problem})") from None
