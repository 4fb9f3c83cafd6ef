"""Determinism of a campaign: chunk seeds, the slices of a pass, and the campaign key.

Chunk ``i = r * n_slices + s`` (repeat r, slice s) draws its faults from its own seed,
derived from (seed, BER, i); the key hashes the design, the data, the fault model, the
seed and the repeat settings (it names the checkpoint file)."""

from __future__ import annotations

import hashlib
import json
import math
import struct

import numpy as np

from fpga_ft.core.faults import FaultModel

CHECKPOINT_FORMAT = 1


def _u32_words(value: int) -> list[int]:
    return [value & 0xFFFFFFFF, (value >> 32) & 0xFFFFFFFF]


def _entropy(seed: int, ber: float, index: int) -> list[int]:
    ber_bits = struct.unpack("<Q", struct.pack("<d", float(ber)))[0]
    return [*_u32_words(int(seed)), *_u32_words(ber_bits), *_u32_words(int(index))]


def chunk_seed(seed: int, ber: float, index: int) -> int:
    """The 64-bit csim seed of chunk ``index`` of a campaign at ``ber`` with ``seed``
    (numpy SeedSequence over fixed-width words of the three values)."""
    return int(np.random.SeedSequence(_entropy(seed, ber, index)).generate_state(1, dtype=np.uint64)[0])


# numpy's SeedSequence (numpy/random/bit_generator.pyx), on uint32 arrays: pool of 4 words
_INIT_A, _MULT_A, _INIT_B, _MULT_B = 0x43B0D7E5, 0x931E8875, 0x8B51F9DD, 0x58F38DED
_MIX_MULT_L, _MIX_MULT_R, _XSHIFT, _POOL = 0xCA01F9DD, 0x4973F715, 16, 4


def chunk_seeds(seed: int, ber: float, first: int, count: int) -> np.ndarray:
    """:func:`chunk_seed` of chunks ``first .. first + count - 1`` at once (uint64 array):
    SeedSequence's mixing run on all of them as uint32 vectors (one numpy pass instead of
    one SeedSequence object per chunk; the same seeds, checked against it in the tests)."""
    u32 = np.uint32
    index = np.arange(first, first + count, dtype=np.uint64)
    fixed = _entropy(seed, ber, 0)[:4]
    words = [np.full(count, w, dtype=u32) for w in fixed] + \
        [(index & np.uint64(0xFFFFFFFF)).astype(u32), (index >> np.uint64(32)).astype(u32)]
    hash_const = u32(_INIT_A)

    def hashmix(value: np.ndarray) -> np.ndarray:
        nonlocal hash_const
        value = value ^ hash_const
        hash_const = u32((int(hash_const) * _MULT_A) & 0xFFFFFFFF)
        value = value * hash_const
        return value ^ (value >> u32(_XSHIFT))

    def mix(x: np.ndarray, y: np.ndarray) -> np.ndarray:
        result = x * u32(_MIX_MULT_L) - y * u32(_MIX_MULT_R)
        return result ^ (result >> u32(_XSHIFT))

    with np.errstate(over="ignore"):
        mixer = [hashmix(words[i]) for i in range(_POOL)]
        for src in range(_POOL):
            for dst in range(_POOL):
                if src != dst:
                    mixer[dst] = mix(mixer[dst], hashmix(mixer[src]))
        for src in range(_POOL, len(words)):
            for dst in range(_POOL):
                mixer[dst] = mix(mixer[dst], hashmix(words[src]))
        state, const = [], _INIT_B
        for dst in range(2):  # two uint32 words, little-endian: one uint64
            value = mixer[dst % _POOL] ^ u32(const)
            const = (const * _MULT_B) & 0xFFFFFFFF
            value = value * u32(const)
            state.append(value ^ (value >> u32(_XSHIFT)))
    return state[0].astype(np.uint64) | (state[1].astype(np.uint64) << np.uint64(32))


class ChunkSeeds:
    """:func:`chunk_seed` for one campaign (seed, BER), computed in blocks of
    :attr:`BLOCK` chunks by :func:`chunk_seeds` as the campaign reaches them."""

    BLOCK = 256

    def __init__(self, seed: int, ber: float):
        self.seed, self.ber = int(seed), float(ber)
        self._blocks: dict[int, np.ndarray] = {}

    def __call__(self, index: int) -> int:
        block = index // self.BLOCK
        if block not in self._blocks:
            self._blocks[block] = chunk_seeds(self.seed, self.ber, block * self.BLOCK, self.BLOCK)
        return int(self._blocks[block][index % self.BLOCK])


def pass_slices(n: int, fault_model: FaultModel, chunk_size: int) -> list[tuple[int, int]]:
    """Sample slices of one pass over the data (the same for every repeat)."""
    count = max(1, math.ceil(n / chunk_size))
    bounds = [i * n // count for i in range(count + 1)]
    if fault_model.held:
        # latched / stuck-at: one slice per scrub interval, so that each chunk is one device
        # (one fault pattern; 0: one device per pass)
        interval = fault_model.scrub_interval or n
        return [(a, min(n, a + interval)) for a in range(0, n, interval)]
    if fault_model.persistent:
        # slice starts on scrub boundaries (0: one slice per pass); with interval 1 the
        # layout, hence every flip, is the transient one
        interval = fault_model.scrub_interval
        if interval == 0:
            return [(0, n)]
        bounds = sorted({0, n, *(min(n, interval * round(b / interval)) for b in bounds[1:-1])})
    return [(bounds[i], bounds[i + 1]) for i in range(len(bounds) - 1)]


def design_fingerprint(design) -> str:
    """What defines a design's behaviour: its metadata, plan and compiled library (whose
    name hashes the generated C++ sources, weights included)."""
    digest = hashlib.sha256()
    digest.update(json.dumps(design.meta, sort_keys=True).encode())
    digest.update(design.plan.key().encode())
    digest.update(design.library.path.name.encode())
    return digest.hexdigest()[:20]


def campaign_key(design_fp: str, data_fp: str, fault_model: FaultModel, seed: int, repeats: int,
                 target_halfwidth, max_repeats: int, confidence: float, chunk_size: int) -> str:
    source = json.dumps({
        "format": CHECKPOINT_FORMAT, "design": design_fp, "data": data_fp, "fault_model": fault_model.to_dict(),
        "seed": int(seed), "repeats": int(repeats), "target_halfwidth": target_halfwidth,
        "max_repeats": int(max_repeats), "confidence": float(confidence) if target_halfwidth else None,
        "chunk_size": int(chunk_size),
    }, sort_keys=True)
    return hashlib.sha256(source.encode()).hexdigest()[:24]


def slice_len(slices, index: int) -> int:
    a, b = slices[index % len(slices)]
    return b - a
