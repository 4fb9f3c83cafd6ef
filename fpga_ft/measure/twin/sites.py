"""Fault sites of a twin: :class:`Site` (one bit of one node instance) and the fault
instrumentation shared by :class:`~fpga_ft.measure.twin.neuron.Twin` and
:class:`~fpga_ft.measure.twin.unit.UnitTwin`: the proof groups, the ``fsel`` encoding
(``{group, node, bit}``, widths in bits) and the per-node XORs.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Iterable

from fpga_ft.core.structure import NodeClass


# ---------------------------------------------------------------------------------------
# Fault sites
# ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Site:
    """One fault site: bit ``bit`` (0 = the class's lowest, at word position
    ``cls.lsb + bit``) of node instance ``node`` of class ``cls``; ``id`` is the value of
    the fault twin's ``fsel`` input that flips it."""

    id: int
    node: str
    cls: NodeClass
    bit: int

    @property
    def label(self) -> str:
        """``p3.lane1[0]``, ``s5.carry[0]``, ``r2.s4.replica[16]``, ``out.voter[1]``."""
        return f"{self.node}.{self.cls.name.split('.', 1)[1]}[{self.bit}]"


class _FaultSites:
    """Fault sites of a twin and their instrumentation (shared by :class:`Twin` and
    :class:`UnitTwin`): the proof groups, the ``fsel`` encoding and the per-node XORs.
    Needs ``self.structure.scheme`` (the node classes) and ``self._fault_on`` /
    ``self._used`` (generation state)."""

    def _init_sites(self, nodes: list[tuple[str, NodeClass]]) -> None:
        # Proof groups (see prove_masked): the masked nodes of each replica (a FullTMR
        # dot-product replica, "r<r>." prefix of the node name; else the replica of the
        # node class, a BitTMR lane), then the unmasked nodes.
        groups: dict[str, list] = {}
        for name, cls in nodes:
            if cls.masked:
                m = re.match(r"(r\d+)\.", name)
                key = m.group(1) if m else ("" if cls.replica is None else f"lane{cls.replica}")
                groups.setdefault(key, []).append((name, cls))
        self.groups: list[str] = list(groups)
        groups["unmasked"] = [nc for nc in nodes if not nc[1].masked]
        # fsel = {group, node, bit}: node = 1-based index of the (node, class) pair in its
        # group (0: no fault), bit = bit within the class. Selections that name no site
        # (node 0, past the group's end, bit >= the class's bits) inject nothing.
        self.bit_bits = max(1, (max(c.bits for _, c in nodes) - 1).bit_length()) if nodes else 1
        self.node_bits = max(1, max(len(g) for g in groups.values()).bit_length())
        self.group_bits = max(1, len(self.groups).bit_length())
        self.index_bits = self.node_bits + self.bit_bits
        self.fsel_width = self.group_bits + self.index_bits
        self.sites: list[Site] = []
        self.group_sites: list[list[Site]] = []
        self._node_sel: dict[tuple[str, NodeClass], int] = {}
        for g, members in enumerate(groups.values()):
            sites: list[Site] = []
            for j, (name, cls) in enumerate(members, start=1):
                sel = (g << self.node_bits) | j
                self._node_sel[(name, cls)] = sel
                sites += [Site((sel << self.bit_bits) | b, name, cls, b) for b in range(cls.bits)]
            self.group_sites.append(sites)
            self.sites += sites
        self.n_masked = sum(1 for s in self.sites if s.cls.masked)

    def _fault_decl(self) -> str:
        """Fault-select decoding shared by the node XORs of a fault module."""
        fs, bb = self.fsel_width, self.bit_bits
        nbits = max((c.bits for _, c in self._node_sel), default=1)
        return (f"  wire [{fs - bb - 1}:0] fnode = fsel[{fs - 1}:{bb}];\n"
                f"  wire [{nbits - 1}:0] fbit = {nbits}'d1 << fsel[{bb - 1}:0];\n")

    # ---- fault instrumentation ---------------------------------------------------------
    def _cls(self, word: str, role: str, replica: int | None) -> NodeClass | None:
        s = self.structure.scheme
        pool = {"product": s.product_nodes, "sum": s.sum_nodes, "output": s.output_nodes}[word]()
        found = [c for c in pool if c.role == role and c.replica == replica]
        return found[0] if found else None

    def _fault(self, node: str, classes: Iterable[NodeClass | None], base: int, width: int) -> str | None:
        """XOR vector (Verilog concatenation, ``width`` bits, MSB first) flipping the bit of
        the site selected by ``fsel`` among ``classes`` of ``node``, which together cover
        word bits ``[base, base+width)``; ``None`` in the clean twin."""
        if not self._fault_on:
            return None
        parts: list[tuple[int, int, str]] = []
        for cls in classes:
            if cls is None:
                continue
            sel = self._node_sel[(node, cls)]
            self._used.add((node, cls))
            hit = f"(fnode == {self.fsel_width - self.bit_bits}'h{sel:x})"
            parts.append((cls.lsb, cls.bits, f"({hit} ? fbit[{cls.bits - 1}:0] : {cls.bits}'d0)"))
        parts.sort()
        pos = base
        for lsb, bits, _ in parts:
            if lsb != pos:
                raise AssertionError(f"node {node}: classes do not tile word bits [{base}, {base + width})")
            pos += bits
        if pos != base + width:
            raise AssertionError(f"node {node}: word bits [{base}, {base + width}) not all nodes")
        return "{" + ", ".join(p for _, _, p in reversed(parts)) + "}"

    @staticmethod
    def _xor(expr: str, fault: str | None) -> str:
        return expr if fault is None else f"{expr} ^ {fault}"
