#!/usr/bin/env python
"""Build the small MNIST subset shipped in ``models/`` from the official MNIST files.

Reads the official gzip files of Y. LeCun, C. Cortes and C. J. C. Burges's MNIST database,
checks each against its published MD5 and writes, under ``--out-dir`` (default: the
repository's ``models/``):

* ``mnist_test.npz``: ``--test-samples`` images (default 2,000) of the official test set
  (``t10k``), stratified by label with a fixed seed.
* ``mnist_train.npz``: ``--train-samples`` images (default 4,000), stratified, from the
  official training set when ``train-images-idx3-ubyte.gz`` and ``train-labels-idx1-ubyte.gz``
  are given; otherwise from the t10k images that are *not* in the test subset (the two
  subsets never share an image). ``source`` (below) says which.

Each ``.npz`` holds ``x`` float32 (N, 28, 28, 1), ``y`` int64 labels 0..9, ``index`` int64
(each sample's position in its official file) and ``source``, a one-element string array
holding JSON: the file names, their MD5s, where they came from (``--origin``), the seed and the
scaling. The files are
written with fixed zip timestamps, so the same inputs give the same bytes.

Scaling: a pixel p (0..255) becomes ``(p // 2) / 128``, a multiple of 2**-7 in
[0, 127/128]: exactly representable in the signed 8-bit input ``quantized_bits(8, 0,
alpha=1)`` (``ap_fixed<8,1>``), whose largest value is 127/128. This drops the pixel's
lowest bit and nothing else.

Run from the repository root, with a directory holding the official files::

    python scripts/make_mnist_subset.py --mnist-dir /path/to/mnist --origin "where they came from"

A missing t10k file or a wrong MD5 is an error (exit status 2); the two training files are
optional but go together.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from train_models import X_MAX, save_npz  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent

#: Published MD5 of each official file (yann.lecun.com/exdb/mnist, as listed by torchvision).
OFFICIAL_MD5 = {
    "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
    "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
    "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
    "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
}
TRAIN_FILES = ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz")
TEST_FILES = ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")

SEED = 20240611
TRAIN_SAMPLES = 4000
TEST_SAMPLES = 2000
SCALING = "(pixel // 2) / 128: multiples of 2**-7 in [0, 127/128], exact in ap_fixed<8,1>"


class SubsetError(Exception):
    """Bad input: one line of text for the user (exit status 2)."""


@dataclass(frozen=True)
class MnistSplit:
    """One official split: images uint8 (N, 28, 28), labels int64 (N,), and its files."""

    images: np.ndarray
    labels: np.ndarray
    files: dict[str, str]  # file name -> MD5 (checked against OFFICIAL_MD5)


def md5_of(path: Path) -> str:
    """MD5 hex digest of a file's bytes."""
    h = hashlib.md5()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def check_md5(path: Path) -> str:
    """Return the file's MD5 after checking it against the published one for its name."""
    if not path.is_file():
        raise SubsetError(f"missing MNIST file: {path}")
    want = OFFICIAL_MD5.get(path.name)
    if want is None:
        raise SubsetError(f"not an official MNIST file name: {path.name} (expected one of {', '.join(OFFICIAL_MD5)})")
    got = md5_of(path)
    if got != want:
        raise SubsetError(f"{path}: MD5 {got} is not the published {want} (not the official file)")
    return got


def read_idx(path: Path, magic: int) -> np.ndarray:
    """Read a gzip IDX file of unsigned bytes: 0x801 -> (N,) labels, 0x803 -> (N, rows, cols)."""
    data = gzip.decompress(path.read_bytes())
    ndim = magic & 0xFF
    head = np.frombuffer(data, dtype=">u4", count=1 + ndim)
    if int(head[0]) != magic:
        raise SubsetError(f"{path}: IDX magic {int(head[0]):#x}, expected {magic:#x}")
    shape = tuple(int(d) for d in head[1:])
    arr = np.frombuffer(data, dtype=np.uint8, offset=4 * (1 + ndim))
    if arr.size != int(np.prod(shape)):
        raise SubsetError(f"{path}: {arr.size} bytes of data for shape {shape}")
    return arr.reshape(shape)


def load_split(directory: Path, names: tuple[str, str]) -> MnistSplit:
    """Check and read one official (images, labels) pair from ``directory``."""
    files = {name: check_md5(directory / name) for name in names}
    images = read_idx(directory / names[0], 0x803)
    labels = read_idx(directory / names[1], 0x801).astype(np.int64)
    if len(images) != len(labels):
        raise SubsetError(f"{directory}: {len(images)} images but {len(labels)} labels")
    return MnistSplit(images, labels, files)


def scale(images: np.ndarray) -> np.ndarray:
    """uint8 (N, 28, 28) -> float32 (N, 28, 28, 1): (p // 2) / 128, exact in ap_fixed<8,1>."""
    x = (images // 2).astype(np.float32) / np.float32(128.0)
    assert float(x.max(initial=0.0)) <= X_MAX
    return x[..., np.newaxis]


def stratified(labels: np.ndarray, n: int, seed: int, exclude: np.ndarray | None = None) -> np.ndarray:
    """Sorted indices of ``n`` samples drawn with the label proportions of ``labels``.

    ``exclude``: indices that may not be drawn. Same inputs and seed -> same indices.
    """
    from sklearn.model_selection import train_test_split

    pool = np.arange(len(labels))
    if exclude is not None:
        pool = np.setdiff1d(pool, exclude)
    if not 10 <= n <= len(pool):
        raise SubsetError(f"cannot draw {n} samples from {len(pool)} (need 10 <= n <= {len(pool)})")
    if n == len(pool):
        return pool
    chosen, _ = train_test_split(pool, train_size=n, stratify=labels[pool], random_state=seed, shuffle=True)
    return np.sort(chosen)


def write_subset(path: Path, split: MnistSplit, idx: np.ndarray, meta: dict) -> None:
    """Write x, y, index and the JSON ``source`` string of the chosen samples."""
    save_npz(
        path,
        x=scale(split.images[idx]),
        y=split.labels[idx],
        index=idx.astype(np.int64),
        source=np.array(json.dumps(meta, sort_keys=True)),
    )


def make_subsets(
    mnist_dir: Path,
    out_dir: Path,
    *,
    origin: str,
    seed: int = SEED,
    train_samples: int = TRAIN_SAMPLES,
    test_samples: int = TEST_SAMPLES,
) -> dict:
    """Check the official files in ``mnist_dir`` and write the two subsets; return the record."""
    present = [name for name in TRAIN_FILES if (mnist_dir / name).exists()]
    if len(present) == 1:
        raise SubsetError(f"{mnist_dir}: has {present[0]} without its pair; give both training files or neither")
    test = load_split(mnist_dir, TEST_FILES)
    test_idx = stratified(test.labels, test_samples, seed)
    if present:
        train = load_split(mnist_dir, TRAIN_FILES)
        train_idx = stratified(train.labels, train_samples, seed)
        train_from = "official training set (train-*)"
    else:
        train = test
        train_idx = stratified(test.labels, train_samples, seed, exclude=test_idx)
        train_from = "official test set (t10k-*), images not in mnist_test.npz (training files not given)"
    common = {"origin": origin, "seed": seed, "scaling": SCALING, "md5_checked": True}
    records = {
        "mnist_train.npz": {**common, "files": train.files, "drawn_from": train_from, "samples": len(train_idx)},
        "mnist_test.npz": {
            **common,
            "files": test.files,
            "drawn_from": "official test set (t10k-*)",
            "samples": len(test_idx),
        },
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    write_subset(out_dir / "mnist_train.npz", train, train_idx, records["mnist_train.npz"])
    write_subset(out_dir / "mnist_test.npz", test, test_idx, records["mnist_test.npz"])
    return records


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--mnist-dir",
        type=Path,
        required=True,
        help="directory with t10k-images-idx3-ubyte.gz, t10k-labels-idx1-ubyte.gz "
        "(and optionally train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz)",
    )
    ap.add_argument("--origin", required=True, help="where the files came from (recorded in the .npz)")
    ap.add_argument("--out-dir", type=Path, default=ROOT / "models")
    ap.add_argument("--seed", type=int, default=SEED)
    ap.add_argument("--train-samples", type=int, default=TRAIN_SAMPLES)
    ap.add_argument("--test-samples", type=int, default=TEST_SAMPLES)
    args = ap.parse_args(argv)
    try:
        records = make_subsets(
            args.mnist_dir,
            args.out_dir,
            origin=args.origin,
            seed=args.seed,
            train_samples=args.train_samples,
            test_samples=args.test_samples,
        )
    except SubsetError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for name, rec in records.items():
        size = (args.out_dir / name).stat().st_size
        print(f"{name}: {rec['samples']} samples from the {rec['drawn_from']}, {size:,} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
