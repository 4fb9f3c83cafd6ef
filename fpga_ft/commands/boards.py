"""``fpga-ft boards [NAME]``: list the board catalogue, or show one board."""

from __future__ import annotations

import textwrap

from fpga_ft.core.boards import RESOURCE_KEYS, Board, get_board, list_boards


def register(subparsers):
    parser = subparsers.add_parser(
        "boards",
        help="list the supported FPGA boards or show one",
        description="List the board catalogue (the packaged boards, plus board files in the "
                    "directories of $FPGA_FT_BOARDS and of installed fpga_ft.boards entry points) "
                    "or show one board's part, default clock, resources and radiation notes.")
    parser.add_argument("name", nargs="?", default=None,
                        help="board key or name, case-insensitive (e.g. pynq-z2)")
    parser.set_defaults(func=run)
    return parser


def run(args) -> dict:
    if args.name:
        boards = [get_board(args.name)]
        print(_details(boards[0]))
    else:
        boards = list_boards()
        print(_table(boards))
    return {"boards": [board.to_dict() for board in boards]}


def _table(boards: list[Board]) -> str:
    header = ["key", "name", "part", "clock", *RESOURCE_KEYS, "backend"]
    rows = [[b.key, b.name, b.part, f"{b.clock_mhz:g} MHz",
             *(f"{b.resources[k]:,}" for k in RESOURCE_KEYS), b.backend] for b in boards]
    numeric = set(range(4, 4 + len(RESOURCE_KEYS)))
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]

    def line(cells):
        return "  ".join(str(c).rjust(w) if i in numeric else str(c).ljust(w)
                         for i, (c, w) in enumerate(zip(cells, widths))).rstrip()

    return "\n".join([line(header), line(["-" * w for w in widths]), *map(line, rows)])


def _details(board: Board) -> str:
    lines = [
        f"{board.name} ({board.key})",
        f"  part:      {board.part}",
        f"  family:    {board.family}",
        f"  clock:     {board.clock_mhz:g} MHz ({board.clock_period_ns:g} ns)",
        f"  backend:   {board.backend}",
        "  resources: " + ", ".join(f"{k} {board.resources[k]:,}" for k in RESOURCE_KEYS),
        "  radiation:",
        textwrap.fill(board.radiation, width=88, initial_indent="    ", subsequent_indent="    "),
    ]
    return "\n".join(lines)
