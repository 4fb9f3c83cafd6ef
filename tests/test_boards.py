"""The board catalogue (boards/*.yml, fpga_ft.core.boards) and ``fpga-ft boards``."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

try:  # the package is not installed in the venv and pyproject sets no pytest pythonpath
    import fpga_ft  # noqa: F401
except ModuleNotFoundError:
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from fpga_ft.cli import main
from fpga_ft.core.boards import BACKENDS, BOARD_KEYS, RESOURCE_KEYS, get_board, list_boards, load_board_file
from fpga_ft.core.errors import FpgaFtError
from fpga_ft.core.paths import BOARDS_DIR

BOARD_FILES = sorted(BOARDS_DIR.glob("*.yml"))

REQUIRED = {  # key: part
    "pynq-z2": "xc7z020clg400-1",
    "zcu102": "xczu9eg-ffvb1156-2-e",
    "kv260": "xck26-sfvc784-2LV-c",
    "alveo-u250": "xcu250-figd2104-2L-e",
    "xqrku060": "xqrku060-cna1509-1M-m",
}

VALID = """\
name: Test Board
part: xc7z020clg400-1
family: zynq7000
clock_mhz: 125
backend: Vitis
resources: {LUT: 10, FF: 20, DSP: 3, BRAM_18K: 4, URAM: 0}
radiation: none
"""


def test_board_files_exist_and_keys_are_lower_case():
    assert len(BOARD_FILES) >= 5
    for path in BOARD_FILES:
        assert path.stem == path.stem.lower(), path


@pytest.mark.parametrize("path", BOARD_FILES, ids=lambda p: p.stem)
def test_every_board_file_loads_with_the_required_keys(path):
    import yaml

    raw = yaml.safe_load(path.read_text())
    assert set(raw) == set(BOARD_KEYS)
    assert set(raw["resources"]) == set(RESOURCE_KEYS)
    board = load_board_file(path)
    assert board.key == path.stem
    assert board.name and board.part and board.family and board.radiation
    assert board.backend in BACKENDS
    assert board.clock_mhz > 0
    assert board.clock_period_ns == pytest.approx(1000.0 / board.clock_mhz)
    for key in ("LUT", "FF", "DSP", "BRAM_18K"):
        assert isinstance(board.resources[key], int) and board.resources[key] > 0, key
    assert isinstance(board.resources["URAM"], int) and board.resources["URAM"] >= 0
    assert board.resources["BRAM_18K"] % 2 == 0  # 2 x the 36Kb block count
    data = board.to_dict()
    assert json.loads(json.dumps(data)) == data
    assert set(data) >= {"key", *BOARD_KEYS, "clock_period_ns"}


def test_required_boards_are_present_with_their_parts():
    boards = {b.key: b for b in list_boards()}
    for key, part in REQUIRED.items():
        assert key in boards, key
        assert boards[key].part == part


def test_list_boards_is_sorted_and_names_are_unique():
    boards = list_boards()
    keys = [b.key for b in boards]
    assert keys == sorted(keys)
    names = [b.name.lower() for b in boards]
    assert len(set(names)) == len(names)


def test_datasheet_figures_of_the_pynq_z2():
    board = get_board("pynq-z2")
    assert board.resources == {"LUT": 53200, "FF": 106400, "DSP": 220, "BRAM_18K": 280, "URAM": 0}
    assert board.backend == "VivadoAccelerator"


@pytest.mark.parametrize("query", ["pynq-z2", "PYNQ-Z2", "Pynq-Z2", "  pynq-z2 "])
def test_lookup_is_case_insensitive_on_key(query):
    assert get_board(query).key == "pynq-z2"


@pytest.mark.parametrize("query", ["Alveo U250", "alveo u250", "ALVEO U250"])
def test_lookup_is_case_insensitive_on_name(query):
    assert get_board(query).key == "alveo-u250"


def test_unknown_board_error_lists_known_boards():
    with pytest.raises(FpgaFtError) as info:
        get_board("nope")
    message = str(info.value)
    assert message.startswith("unknown board 'nope' (known: ")
    for key in REQUIRED:
        assert key in message
    assert "\n" not in message


def _write(tmp_path, text, name="bad.yml"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_valid_temp_board_loads(tmp_path):
    board = load_board_file(_write(tmp_path, VALID, "My-Board.yml"))
    assert board.key == "my-board"
    assert board.clock_period_ns == pytest.approx(8.0)
    assert get_board("test board", boards_dir=tmp_path).key == "my-board"


@pytest.mark.parametrize("text, key", [
    ("name: [unclosed\n", None),
    ("- just\n- a list\n", None),
    (VALID.replace("part: xc7z020clg400-1\n", ""), "part"),
    (VALID + "colour: red\n", "colour"),
    (VALID.replace("clock_mhz: 125", "clock_mhz: -5"), "clock_mhz"),
    (VALID.replace("clock_mhz: 125", "clock_mhz: fast"), "clock_mhz"),
    (VALID.replace("backend: Vitis", "backend: Quartus"), "backend"),
    (VALID.replace("LUT: 10", "LUT: -10"), "resources.LUT"),
    (VALID.replace("DSP: 3", "DSP: 2.5"), "resources.DSP"),
    (VALID.replace(", URAM: 0", ""), "resources.URAM"),
    (VALID.replace("resources: {LUT: 10, FF: 20, DSP: 3, BRAM_18K: 4, URAM: 0}", "resources: 7"), "resources"),
    (VALID.replace("name: Test Board", "name: ''"), "name"),
])
def test_malformed_board_file_raises_one_line_error(tmp_path, text, key):
    path = _write(tmp_path, text)
    with pytest.raises(FpgaFtError) as info:
        load_board_file(path)
    message = str(info.value)
    assert "\n" not in message
    assert str(path) in message
    if key is not None:
        assert f"'{key}'" in message


def test_malformed_file_in_directory_fails_listing(tmp_path):
    _write(tmp_path, VALID, "good.yml")
    _write(tmp_path, VALID.replace("FF: 20", "FF: -1"), "broken.yml")
    with pytest.raises(FpgaFtError, match=r"broken\.yml.*resources\.FF"):
        list_boards(tmp_path)


def test_missing_board_file_raises(tmp_path):
    with pytest.raises(FpgaFtError, match="cannot read board file"):
        load_board_file(tmp_path / "absent.yml")


def test_cli_lists_boards_and_writes_json(tmp_path, capsys):
    out = tmp_path / "b.json"
    assert main(["boards", "--json", str(out)]) == 0
    data = json.loads(out.read_text())
    keys = [b["key"] for b in data["boards"]]
    assert keys == [b.key for b in list_boards()]
    assert set(REQUIRED) <= set(keys)
    printed = capsys.readouterr().out
    for column in ("key", "part", "clock", *RESOURCE_KEYS, "backend"):
        assert column in printed.splitlines()[0]
    assert "xc7z020clg400-1" in printed


def test_cli_shows_one_board(tmp_path, capsys):
    out = tmp_path / "one.json"
    assert main(["boards", "zcu102", "--json", str(out)]) == 0
    data = json.loads(out.read_text())
    assert [b["key"] for b in data["boards"]] == ["zcu102"]
    assert data["boards"][0]["resources"]["DSP"] == 2520
    printed = capsys.readouterr().out
    assert "xczu9eg-ffvb1156-2-e" in printed and "radiation" in printed


def test_cli_unknown_board_exits_2(capsys):
    assert main(["boards", "nope"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: unknown board 'nope' (known: ")


# --- where boards come from: $FPGA_FT_BOARDS, entry points, the packaged boards


def test_packaged_boards_come_from_the_data_folder():
    from fpga_ft.core.boards import board_dirs
    from fpga_ft.core.paths import data_dir

    assert BOARDS_DIR == data_dir("boards") and BOARDS_DIR.is_dir()
    assert board_dirs()[-1] == BOARDS_DIR


def test_env_search_path_adds_and_overrides_boards(tmp_path, monkeypatch):
    first, second = tmp_path / "first", tmp_path / "second"
    first.mkdir(), second.mkdir()
    _write(first, VALID, "my-board.yml")
    _write(first, VALID.replace("name: Test Board", "name: My ZCU102").replace("DSP: 3", "DSP: 7"), "zcu102.yml")
    _write(second, VALID.replace("DSP: 3", "DSP: 9"), "my-board.yml")  # hidden by the first directory
    monkeypatch.setenv("FPGA_FT_BOARDS", f"{first}{os.pathsep}{os.pathsep}{second}")
    boards = {b.key: b for b in list_boards()}
    assert boards["my-board"].resources["DSP"] == 3
    assert boards["zcu102"].resources["DSP"] == 7  # the user's copy wins over the packaged file
    assert set(REQUIRED) <= set(boards)
    assert get_board("test board").key == "my-board"


def test_env_search_path_names_a_missing_directory(tmp_path, monkeypatch):
    monkeypatch.setenv("FPGA_FT_BOARDS", str(tmp_path / "absent"))
    with pytest.raises(FpgaFtError, match=r"FPGA_FT_BOARDS: board directory .*absent not found"):
        list_boards()


def _fake_distribution(site, module_text, entry_value):
    """An installed package (importable module + dist-info with a fpga_ft.boards entry point)."""
    (site / "myboards.py").write_text(module_text)
    info = site / "myboards-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: myboards\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(f"[fpga_ft.boards]\nmine = {entry_value}\n")


def test_entry_point_offers_a_board_directory(tmp_path, monkeypatch):
    site, shelf = tmp_path / "site", tmp_path / "shelf"
    site.mkdir(), shelf.mkdir()
    _write(shelf, VALID, "plugin-board.yml")
    _fake_distribution(site, f"from pathlib import Path\ndef boards():\n    return Path({str(shelf)!r})\n",
                       "myboards:boards")
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.delitem(sys.modules, "myboards", raising=False)
    from fpga_ft.core.boards import board_dirs

    assert shelf in board_dirs()
    assert get_board("plugin-board").name == "Test Board"
    assert set(REQUIRED) <= {b.key for b in list_boards()}


def test_broken_entry_point_is_one_line_error(tmp_path, monkeypatch):
    site = tmp_path / "site"
    site.mkdir()
    _fake_distribution(site, "raise ImportError('no such thing')\n", "myboards:BOARDS")
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.delitem(sys.modules, "myboards", raising=False)
    with pytest.raises(FpgaFtError, match=r"^board entry point 'mine' \(myboards:BOARDS\) failed: no such thing$"):
        list_boards()
