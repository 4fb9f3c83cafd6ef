"""Argument helpers shared by the sub-commands (one definition of each common option)."""

from __future__ import annotations

import argparse

from fpga_ft.core.errors import FpgaFtError

MODEL_HELP = ("the model: a full Keras 2 model (.h5, .keras saved by Keras 2, SavedModel dir), an architecture "
              ".json with --weights W.h5 (default: the sibling <stem>_weights.h5), or an hls4ml config YAML "
              "(KerasJson/KerasH5/KerasModel relative to the YAML's directory; its HLSConfig precisions, Strategy, "
              "ReuseFactor, IOType, Part, ClockPeriod and Backend are honoured)")


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1 (rejected at parse time, before any work starts)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def add_model_argument(parser: argparse.ArgumentParser, help: str | None = None) -> None:
    """MODEL, --weights, --input-precision."""
    parser.add_argument("model", metavar="MODEL", help=help or MODEL_HELP)
    add_intake_options(parser)


def add_intake_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--weights", metavar="W.h5", default=None,
                        help="weights of a .json architecture MODEL (default: <stem>_weights.h5 next to it)")
    parser.add_argument("--input-precision", metavar="TYPE", default=None,
                        help="for a model without an input quantizer: the input type, e.g. 'ap_fixed<16,6>' "
                             "(rounding/overflow modes allowed, default AP_TRN/AP_WRAP); the data is quantized "
                             "to it and a matching QActivation(quantized_bits) is inserted in a copy of the "
                             "model. Default: the config's input layer Precision result, else its model "
                             "Precision, else hls4ml's ap_fixed<16,6>")


def add_exactness_option(parser: argparse.ArgumentParser) -> None:
    """--allow-inexact: the commands whose results rest on the C simulation being bit-exact
    with QKeras (csim, inject, analyze, optimize, compare) refuse a model with float weights
    (:func:`fpga_ft.generate.bitexact.float_weight_layers`) unless it is given."""
    parser.add_argument("--allow-inexact", action="store_true",
                        help="accept a model with float (unquantized) weights, e.g. a Keras Dense or a QDense "
                             "without kernel_quantizer: hls4ml rounds them, so results are not bit-exact with "
                             "the model (marked \"inexact\": true); default: refused")


def add_scheduler_option(parser: argparse.ArgumentParser) -> None:
    """--scheduler: run the command's campaign chunks and oracle jobs as tasks on a Dask cluster."""
    parser.add_argument("--scheduler", default=None, metavar="tcp://HOST:PORT",
                        help="Dask scheduler: run the campaign chunks and oracle jobs there as tasks (same "
                             "results as local; needs fpga-ft[dask] and the fpga-ft cache on a file system the "
                             "workers share, see docs/cluster.md); default $FPGA_FT_SCHEDULER, else local")


def use_scheduler(args) -> str | None:
    """Choose where the command's chunks run (--scheduler, else $FPGA_FT_SCHEDULER, else
    local) and connect now: a bad address fails before any work."""
    from fpga_ft.simulate.cluster import select_scheduler

    return select_scheduler(getattr(args, "scheduler", None))


def check_exact(args, prepared) -> None:
    """For a command with ``--allow-inexact``: refuse (or, allowed, warn about and record in
    ``prepared.inexact_layers`` and ``args.inexact_layers``) a model that is not bit-exact by
    construction. Commands without the option are not checked."""
    allow = getattr(args, "allow_inexact", None)
    if allow is None:
        return
    from fpga_ft.generate.bitexact import check_exact as check

    prepared.inexact_layers = [f"{e['layer']}: {e['what']}" for e in
                               check(prepared.model, bool(allow), label=f"model {args.model}")]
    args.inexact_layers = list(prepared.inexact_layers)


def add_progress_options(parser: argparse.ArgumentParser) -> None:
    """``--progress`` / ``--quiet``: progress bars with ETA on stderr (default: when stderr is
    a terminal and the JSON does not go to stdout); read them with :func:`progress_of`."""
    parser.add_argument("--progress", action="store_true",
                        help="progress bars with ETA on stderr (default: when stderr is a terminal and the JSON "
                             "does not go to stdout)")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")


def progress_of(args) -> bool:
    """Whether to show progress bars (see :func:`add_progress_options`)."""
    from fpga_ft.simulate.campaign import progress_wanted

    return False if getattr(args, "quiet", False) else progress_wanted(args.progress, getattr(args, "json", None))


def _checked_data(path, model, prepared):
    """(x, y) of a .npz file, checked against the model's input shape and outputs, x in the
    model's input words."""
    from fpga_ft.generate.modelio import check_input_shape, check_labels, load_data, model_n_outputs

    x, y = load_data(path)
    check_input_shape(model, x)
    check_labels(path, y, model_n_outputs(model))
    return prepared.prepare_inputs(x), y


def add_design_options(parser: argparse.ArgumentParser, board_required: bool = False) -> None:
    """--plan, --board, --backend, --io-type, --reuse-factor (given explicitly, each wins
    over an hls4ml config YAML's value)."""
    parser.add_argument("--plan", metavar="PLAN.yml", help="protection plan (YAML); default: unprotected")
    parser.add_argument("--board", metavar="NAME", required=board_required,
                        help="target board (see `fpga-ft boards`); sets part, clock and backend, over a config "
                             "YAML's Part/ClockPeriod/Backend")
    parser.add_argument("--backend", choices=["vitis", "vivado"], default=None,
                        help="hls4ml backend (default: the board's, else the config YAML's, else vitis)")
    parser.add_argument("--io-type", choices=["io_parallel", "io_stream"], default=None,
                        help="hls4ml I/O type (default: the config YAML's IOType, else io_parallel)")
    parser.add_argument("--reuse-factor", type=int, default=None, metavar="R",
                        help="hls4ml reuse factor of every layer: each multiplier is shared R times (default: the "
                             "config YAML's per-layer/model ReuseFactor, else 1)")


def open_prepared(args):
    """The :class:`fpga_ft.generate.intake.PreparedModel` named by ``args.model`` (notes printed)."""
    from fpga_ft.generate.intake import open_model

    prepared = open_model(args.model, weights=getattr(args, "weights", None),
                          input_precision=getattr(args, "input_precision", None))
    check_exact(args, prepared)
    return prepared


def load_common(args, need_data: bool = True):
    """Load model, data, board and plan named by the arguments. Returns a dict: ``model``
    (the Keras model to convert and compare with), ``prepared`` (its
    :class:`~fpga_ft.generate.intake.PreparedModel`), ``x`` (already quantized to the model's input
    type when the intake inserted one), ``y``, ``board``, ``plan``."""
    from fpga_ft.core.boards import get_board
    from fpga_ft.core.plan import ProtectionPlan

    if getattr(args, "reuse_factor", None) is not None and args.reuse_factor < 1:
        raise FpgaFtError(f"--reuse-factor must be >= 1, got {args.reuse_factor}")
    board = get_board(args.board) if getattr(args, "board", None) else None
    plan = ProtectionPlan.load(args.plan) if getattr(args, "plan", None) else ProtectionPlan()
    prepared = open_prepared(args)
    model = prepared.model
    x = y = None
    data = getattr(args, "data", None)
    if data:
        x, y = _checked_data(data, model, prepared)
    elif need_data:
        raise FpgaFtError("--data D.npz is required")
    return {"model": model, "prepared": prepared, "x": x, "y": y, "board": board, "plan": plan}


def design_kwargs(args, loaded) -> dict:
    """build_design keyword arguments: the explicit options (None when not given: the
    config YAML's value, else the default, applies) and the model's config."""
    prepared = loaded.get("prepared")
    return {"board": loaded["board"], "backend": getattr(args, "backend", None),
            "io_type": getattr(args, "io_type", None),
            "reuse_factor": getattr(args, "reuse_factor", None),
            "hls_config": None if prepared is None else prepared.hls_config}


def load_model_and_data(model_path, data_path, train_path=None, *, weights=None, input_precision=None,
                        with_prepared: bool = False, args=None):
    """(model, x, y, x_train, y_train): the model to convert and compare with, its test data
    and, when given, its training data, each checked against the model's input shape and
    quantized to its input type when the intake inserted one (x_train/y_train None).
    ``with_prepared``: append the :class:`~fpga_ft.generate.intake.PreparedModel` as a sixth item.
    ``args``: the command's arguments, for :func:`check_exact`."""
    from fpga_ft.generate.intake import open_model

    prepared = open_model(model_path, weights=weights, input_precision=input_precision)
    if args is not None:
        check_exact(args, prepared)
    model = prepared.model
    x, y = _checked_data(data_path, model, prepared)
    x_train = y_train = None
    if train_path:
        x_train, y_train = _checked_data(train_path, model, prepared)
    if with_prepared:
        return model, x, y, x_train, y_train, prepared
    return model, x, y, x_train, y_train


#: Help of the search options whose wording differs between ``optimize`` and ``compare``.
_SEARCH_HELP = {
    "train": {"optimize": "training set: enables the algorithm knobs (fine-tuning) and feeds the ranking",
              "compare": "training set: enables TMR-ALG and the optimizer's algorithm knobs"},
    "max_latency_overhead": {"optimize": "allowed latency increase vs the unprotected design, fraction (default 0.10)",
                             "compare": "allowed latency increase vs Base, fraction (default 0.10)"},
    "seed": {"optimize": "seed of the sampler, the campaigns and the fine-tuning (default 0)",
             "compare": "seed (default 0)"},
    "repeats": {"optimize": "campaign passes over the test set per candidate (default {})",
                "compare": "campaign passes over the test set per design (default {})"},
    "sites": {"optimize": "fault sites: weights, activations, products, accumulators or all (default all)",
              "compare": "fault sites (default all)"},
    "epochs": {"optimize": "fine-tuning epochs of algorithm-knob candidates (default {})",
               "compare": "fine-tuning epochs of algorithm knobs (default {})"},
    "ranking": {"optimize": "vulnerability method that ranks the neurons (default {}; see `fpga-ft analyze --help`)",
                "compare": "vulnerability method ranking the neurons (default {})"},
    "objective": {"optimize": "what to minimise", "compare": "what TMR-CL's optimizer minimises"},
}
OBJECTIVE_HELP = (": LUT (default), FF, DSP, BRAM_18K, weighted:LUT=1,DSP=100,FF=0.5 (a weighted sum of LUT, FF, "
                  "DSP, BRAM_18K, latency_cycles) or module:function (a function of those figures, imported; "
                  "lower is better)")


def add_search_options(parser: argparse.ArgumentParser, command: str, between=None) -> None:
    """The options ``optimize`` and ``compare`` share (``command`` picks the wording of
    their help): MODEL, --weights, --input-precision, --allow-inexact, --data, --train,
    --ber, --board, --max-accuracy-drop, --max-latency-overhead, --trials, --storage,
    --objective, then ``between(parser)`` (the command's own options placed there), then
    --seed, --repeats, --workers, --scheduler, --sites, --epochs, --ranking, --ranking-repeats."""
    from fpga_ft.search import compare as C
    from fpga_ft.search import optimize as O
    from fpga_ft.search.algorithm import DEFAULT_EPOCHS

    def text(key: str, *values) -> str:
        return _SEARCH_HELP[key][command].format(*values)

    many = command == "compare"  # several BERs, one accuracy target each, TMR-CL's trials
    parser.add_argument("model", metavar="MODEL", help=MODEL_HELP + " (--board wins over its Part/ClockPeriod/Backend)")
    add_intake_options(parser)
    add_exactness_option(parser)
    parser.add_argument("--data", required=True, metavar="D.npz", help="test set (.npz with x, y) for the campaigns")
    parser.add_argument("--train", default=None, metavar="T.npz", help=text("train"))

    def board():
        parser.add_argument("--board", required=True, metavar="NAME",
                            help="target board (see `fpga-ft boards`); its part, clock and backend win over a "
                                 "config YAML's Part/ClockPeriod/Backend")

    if many:
        parser.add_argument("--ber", required=True, nargs="+", metavar="B",
                            help="bit error rate(s), faults per bit per inference (e.g. 1e-4 2e-4)")
        parser.add_argument("--max-accuracy-drop", type=float, nargs="+", default=None, metavar="F",
                            help="allowed accuracy loss per BER, fraction: one value for all or one per BER "
                                 "(default 0.03 for the first BER, 0.05 for the others)")
    else:
        parser.add_argument("--ber", required=True, metavar="B",
                            help="bit error rate of the target, faults per bit per inference")
        board()
        parser.add_argument("--max-accuracy-drop", type=float, default=0.01, metavar="F",
                            help="allowed accuracy loss vs the clean unprotected design, fraction (default 0.01)")
    parser.add_argument("--max-latency-overhead", type=float, default=0.10, metavar="F",
                        help=text("max_latency_overhead"))
    if many:
        board()
        parser.add_argument("--trials", type=int, default=C.DEFAULT_TRIALS, metavar="N",
                            help=f"optimizer trials per BER for TMR-CL (default {C.DEFAULT_TRIALS})")
        parser.add_argument("--storage", default=None, metavar="URL",
                            help="Optuna storage of the TMR-CL studies (default: SQLite file in the fpga-ft cache)")
    else:
        parser.add_argument("--trials", type=int, required=True, metavar="N",
                            help="complete trials the study should hold (trials of earlier runs count)")
        parser.add_argument("--storage", default=None, metavar="URL",
                            help="Optuna storage, an SQLAlchemy URL (default: sqlite:///<fpga-ft cache>/optuna/"
                                 f"{O.STORAGE_FILE}); postgresql://USER:PASS@HOST/DB for several machines")
    parser.add_argument("--objective", default="LUT", metavar="NAME", help=text("objective") + OBJECTIVE_HELP)
    if between is not None:
        between(parser)
    parser.add_argument("--seed", type=int, default=0, metavar="S", help=text("seed"))
    parser.add_argument("--repeats", type=int, default=O.DEFAULT_REPEATS, metavar="R",
                        help=text("repeats", O.DEFAULT_REPEATS))
    parser.add_argument("--max-repeats", type=int, default=None, metavar="R",
                        help="sequential evaluation: a candidate whose accuracy interval straddles the target gets "
                             "--repeats more passes at a time, up to R passes in all, until the interval is wholly "
                             f"above or below it (default {O.DEFAULT_MAX_REPEATS_FACTOR} x --repeats; "
                             "R = --repeats: off)")
    parser.add_argument("--workers", type=int, default=1, metavar="W", help="campaign worker processes (default 1)")
    add_scheduler_option(parser)
    parser.add_argument("--sites", default="all", metavar="S[,S]", help=text("sites"))
    parser.add_argument("--epochs", type=int, default=DEFAULT_EPOCHS, metavar="E", help=text("epochs", DEFAULT_EPOCHS))
    parser.add_argument("--ranking", default=O.DEFAULT_RANKING, metavar="METHOD",
                        help=text("ranking", O.DEFAULT_RANKING))
    parser.add_argument("--ranking-repeats", type=int, default=O.DEFAULT_RANKING_REPEATS, metavar="R",
                        help=f"passes per neuron of the injection ranking (default {O.DEFAULT_RANKING_REPEATS})")


def check_search_args(args, minimums) -> tuple:
    """The checks ``optimize`` and ``compare`` share, before any work: each ``(option, least
    value)`` of ``minimums``, --plot's file type, --storage's URL, --objective, then
    --scheduler (connected: :func:`use_scheduler`). Returns (fault sites, objective)."""
    from pathlib import Path

    from fpga_ft.core.faults import parse_sites
    from fpga_ft.search.optimize import get_objective

    for name, low in minimums:
        if getattr(args, name) < low:
            raise FpgaFtError(f"--{name.replace('_', '-')} must be >= {low}, got {getattr(args, name)}")
    if args.max_repeats is not None and args.max_repeats < args.repeats:
        raise FpgaFtError(f"--max-repeats must be >= --repeats ({args.repeats}), got {args.max_repeats}")
    if args.plot and Path(args.plot).suffix.lower() not in (".png", ".pdf", ".svg"):
        raise FpgaFtError(f"--plot needs an image file name (.png, .pdf, .svg), got {args.plot}")
    if args.storage:
        check_storage_url(args.storage)
    sites, objective = parse_sites(args.sites), get_objective(args.objective)
    use_scheduler(args)
    return sites, objective


def check_storage_url(url: str) -> None:
    """One-line error for a --storage that is not an SQLAlchemy URL (before any work)."""
    try:
        from sqlalchemy.engine import make_url

        make_url(url)
    except Exception:
        raise FpgaFtError(f"--storage must be an SQLAlchemy URL (sqlite:///FILE, postgresql://USER@HOST/DB), "
                          f"got {url!r}") from None


def make_evaluator(args, progress: bool = False):
    """The :class:`~fpga_ft.search.optimize.Evaluator` of the search options (model, data,
    training data, board, campaign and ranking settings)."""
    from fpga_ft.core.boards import get_board
    from fpga_ft.measure import vulnerability as V
    from fpga_ft.search.optimize import Evaluator

    if args.ranking not in V.METHODS:
        raise FpgaFtError(f"unknown --ranking method '{args.ranking}' (known: {', '.join(V.METHODS)})")
    board = get_board(args.board)
    model, x, y, x_train, y_train, prepared = load_model_and_data(
        args.model, args.data, args.train, weights=getattr(args, "weights", None),
        input_precision=getattr(args, "input_precision", None), with_prepared=True, args=args)
    return Evaluator(model, x, y, board=board, x_train=x_train, y_train=y_train, repeats=args.repeats,
                     max_repeats=args.max_repeats, seed=args.seed, workers=args.workers, epochs=args.epochs,
                     ranking=args.ranking, ranking_repeats=args.ranking_repeats, model_path=str(args.model),
                     progress=progress, hls_config=prepared.hls_config)
