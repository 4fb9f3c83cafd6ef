"""Argument helpers shared by the sub-commands (one definition of each common option)."""

from __future__ import annotations

import argparse

from fpga_ft.errors import FpgaFtError


def add_model_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", metavar="MODEL", help="QKeras model file (.h5, .keras or SavedModel dir)")


def add_design_options(parser: argparse.ArgumentParser, board_required: bool = False) -> None:
    """--plan, --board, --backend, --io-type, --reuse-factor."""
    parser.add_argument("--plan", metavar="PLAN.yml", help="protection plan (YAML); default: unprotected")
    parser.add_argument("--board", metavar="NAME", required=board_required,
                        help="target board (see `fpga-ft boards`); sets part, clock and backend")
    parser.add_argument("--backend", choices=["vitis", "vivado"], default=None,
                        help="hls4ml backend (default: the board's, else vitis)")
    parser.add_argument("--io-type", choices=["io_parallel", "io_stream"], default="io_parallel",
                        help="hls4ml I/O type (default io_parallel)")
    parser.add_argument("--reuse-factor", type=int, default=1, metavar="R",
                        help="hls4ml reuse factor: each multiplier is shared R times (default 1)")


def load_common(args, need_data: bool = True):
    """Load model, data, board and plan named by the arguments. Returns a dict."""
    from fpga_ft.boards import get_board
    from fpga_ft.modelio import check_input_shape, load_data, load_model
    from fpga_ft.plan import ProtectionPlan

    board = get_board(args.board) if getattr(args, "board", None) else None
    plan = ProtectionPlan.load(args.plan) if getattr(args, "plan", None) else ProtectionPlan()
    model = load_model(args.model)
    x = y = None
    data = getattr(args, "data", None)
    if data:
        x, y = load_data(data)
        check_input_shape(model, x)
    elif need_data:
        raise FpgaFtError("--data D.npz is required")
    if getattr(args, "reuse_factor", 1) < 1:
        raise FpgaFtError(f"--reuse-factor must be >= 1, got {args.reuse_factor}")
    return {"model": model, "x": x, "y": y, "board": board, "plan": plan}


def design_kwargs(args, loaded) -> dict:
    return {"board": loaded["board"], "backend": getattr(args, "backend", None),
            "io_type": getattr(args, "io_type", "io_parallel"),
            "reuse_factor": getattr(args, "reuse_factor", 1)}


def load_model_and_data(model_path, data_path, train_path=None):
    """(model, x, y, x_train, y_train): the QKeras model, its test data and, when given, its
    training data, each checked against the model's input shape (x_train/y_train None)."""
    from fpga_ft.modelio import check_input_shape, load_data, load_model

    model = load_model(model_path)
    x, y = load_data(data_path)
    check_input_shape(model, x)
    x_train = y_train = None
    if train_path:
        x_train, y_train = load_data(train_path)
        check_input_shape(model, x_train)
    return model, x, y, x_train, y_train
