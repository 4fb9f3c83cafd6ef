"""The search space: Optuna parameters of one model (critical neurons and protected MSBs per
layer; with algorithm knobs weight/activation bits, clip bound 2^integer and pruning
sparsity as a fraction) and the default seed candidates.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Mapping

import numpy as np

from fpga_ft.search.algorithm import AlgorithmKnobs, LayerKnobs
from fpga_ft.search.optimize.targets import ProtectionSpec

if TYPE_CHECKING:
    from fpga_ft.search.optimize.evaluator import Evaluator


def _max_critical(info) -> int:
    """Critical neurons a layer can have: none in a time-shared layer (no FullTMR form there)."""
    return 0 if getattr(info, "time_shared", False) else int(info.n_out)


@dataclass
class SearchSpace:
    """Optuna parameters of one model (names ``critical:L``, ``msbs:L``, and with algorithm
    knobs ``wbits:L``, ``abits:L``, ``clip:L``, ``sparsity:L``)."""

    layers: list
    knob_infos: Mapping
    algorithm: bool
    sparsity_max: float = 0.8
    sparsity_step: float = 0.1

    def bounds(self) -> dict:
        out = {}
        for info in self.layers:
            out[f"critical:{info.name}"] = (0, _max_critical(info))
            out[f"msbs:{info.name}"] = (0, info.accum_type.width)
            if self.algorithm:
                k = self.knob_infos[info.name]
                wb = k.weight_bits
                out[f"wbits:{info.name}"] = (max(2, wb - 3), wb) if wb else (4, 8)
                out[f"sparsity:{info.name}"] = (0.0, self.sparsity_max)
                if k.activation is not None:
                    ab, ai = k.activation_bits, k.activation_integer
                    out[f"abits:{info.name}"] = (max(2, ab - 3), ab)
                    out[f"clip:{info.name}"] = (max(0, ai - 1), ai + 1)
        return out

    def to_dict(self) -> dict:
        return {name: list(b) for name, b in self.bounds().items()}

    def suggest(self, trial):
        """(AlgorithmKnobs, ProtectionSpec) from an Optuna trial."""
        critical, msbs, knobs = {}, {}, {}
        for info in self.layers:
            name = info.name
            critical[name] = trial.suggest_int(f"critical:{name}", 0, _max_critical(info))
            msbs[name] = trial.suggest_int(f"msbs:{name}", 0, info.accum_type.width)
            if self.algorithm:
                k = self.knob_infos[name]
                lo, hi = self.bounds()[f"wbits:{name}"]
                wbits = trial.suggest_int(f"wbits:{name}", lo, hi)
                sparsity = trial.suggest_float(f"sparsity:{name}", 0.0, self.sparsity_max, step=self.sparsity_step)
                abits = clip = None
                if k.activation is not None:
                    alo, ahi = self.bounds()[f"abits:{name}"]
                    abits = trial.suggest_int(f"abits:{name}", alo, ahi)
                    clo, chi = self.bounds()[f"clip:{name}"]
                    clip = trial.suggest_int(f"clip:{name}", clo, chi)
                knobs[name] = _layer_knobs(k, wbits, abits, clip, sparsity)
        return AlgorithmKnobs({n: v for n, v in knobs.items() if not v.is_identity()}), ProtectionSpec(critical, msbs)

    def params(self, knobs=None, spec: ProtectionSpec | None = None) -> dict:
        """Optuna parameters of a candidate (for ``enqueue_trial``); unset knobs = original."""
        knobs = knobs or AlgorithmKnobs()
        spec = spec or ProtectionSpec()
        out = {}
        for info in self.layers:
            name = info.name
            out[f"critical:{name}"] = int(min(spec.critical.get(name, 0), _max_critical(info)))
            out[f"msbs:{name}"] = int(min(spec.msbs.get(name, 0), info.accum_type.width))
            if self.algorithm:
                k = self.knob_infos[name]
                lk = knobs.for_layer(name)
                lo, hi = self.bounds()[f"wbits:{name}"]
                wb = lk.weight_bits if lk.weight_bits is not None else (k.weight_bits or hi)
                out[f"wbits:{name}"] = int(min(max(wb, lo), hi))
                sp = round(round(float(lk.sparsity) / self.sparsity_step) * self.sparsity_step, 6)
                out[f"sparsity:{name}"] = float(min(max(sp, 0.0), self.sparsity_max))
                if k.activation is not None:
                    alo, ahi = self.bounds()[f"abits:{name}"]
                    ab = lk.activation_bits if lk.activation_bits is not None else k.activation_bits
                    out[f"abits:{name}"] = int(min(max(ab, alo), ahi))
                    clo, chi = self.bounds()[f"clip:{name}"]
                    ci = lk.clip_integer if lk.clip_integer is not None else k.activation_integer
                    out[f"clip:{name}"] = int(min(max(ci, clo), chi))
        return out

    def from_params(self, params: Mapping):
        """(AlgorithmKnobs, ProtectionSpec) from stored trial parameters."""
        critical = {i.name: int(params.get(f"critical:{i.name}", 0)) for i in self.layers}
        msbs = {i.name: int(params.get(f"msbs:{i.name}", 0)) for i in self.layers}
        knobs = {}
        if self.algorithm:
            for info in self.layers:
                k = self.knob_infos[info.name]
                knobs[info.name] = _layer_knobs(k, params.get(f"wbits:{info.name}"), params.get(f"abits:{info.name}"),
                                                params.get(f"clip:{info.name}"),
                                                float(params.get(f"sparsity:{info.name}", 0.0)))
        return AlgorithmKnobs({n: v for n, v in knobs.items() if not v.is_identity()}), ProtectionSpec(critical, msbs)


def _layer_knobs(info, wbits, abits, clip, sparsity):
    wbits = None if wbits is None or wbits == info.weight_bits else int(wbits)
    abits = None if abits is None or abits == info.activation_bits else int(abits)
    clip = None if clip is None or clip == info.activation_integer else int(clip)
    return LayerKnobs(weight_bits=wbits, bias_bits=wbits, activation_bits=abits, clip_integer=clip,
                      sparsity=round(float(sparsity or 0.0), 6))


def default_seeds(ev: Evaluator, space: SearchSpace) -> list[tuple[str, object, ProtectionSpec]]:
    """Sensible first candidates: uniform TMR-CRT1..3, the most vulnerable neurons (by the
    ranking's scores: those above 50 / 20 / 5 % of the model's largest score), each layer
    alone fully critical (latency-friendly), a uniform 25 % of critical neurons and, with
    algorithm knobs, a coarser-and-pruned model with its most vulnerable neurons critical."""
    layers = ev.layers0
    seeds: list[tuple[str, object, ProtectionSpec]] = []
    empty = AlgorithmKnobs()
    scores = ev.ranking_info().get("scores", {})
    peak = max((max(v) for v in scores.values() if len(v)), default=0.0)

    def above(share):
        counts = {}
        for info in layers:
            s = np.asarray(scores.get(info.name, []), dtype=float)
            counts[info.name] = int(np.sum(s >= share * peak)) if peak > 0 and s.size else 0
        return ProtectionSpec(counts, {i.name: 0 for i in layers})

    seeds.append(("vulnerable>20%", empty, above(0.2)))
    seeds.append(("TMR-CRT2", empty, ProtectionSpec.uniform(layers, msbs=2)))
    seeds.append(("vulnerable>50%", empty, above(0.5)))
    seeds.append(("vulnerable>5%", empty, above(0.05)))
    totals = {i.name: float(np.clip(np.asarray(scores.get(i.name, [0.0]), dtype=float), 0, None).sum()) for i in layers}
    for info in sorted(layers, key=lambda i: -totals[i.name]):
        seeds.append((f"only-{info.name}-critical", empty,
                      ProtectionSpec({info.name: info.n_out}, {i.name: 0 for i in layers})))
    seeds.append(("TMR-CRT1", empty, ProtectionSpec.uniform(layers, msbs=1)))
    seeds.append(("TMR-CRT3", empty, ProtectionSpec.uniform(layers, msbs=3)))
    seeds.append(("critical-25%", empty, ProtectionSpec.uniform(layers, fraction=0.25)))
    if space.algorithm:
        knobs = {}
        for info in layers:
            k = ev.knob_infos[info.name]
            wb = max(2, (k.weight_bits or 8) - 2)
            knobs[info.name] = LayerKnobs(weight_bits=wb, bias_bits=wb, sparsity=0.5)
        seeds.insert(1, ("coarse+pruned, vulnerable>20%", AlgorithmKnobs(knobs), above(0.2)))
    return seeds
