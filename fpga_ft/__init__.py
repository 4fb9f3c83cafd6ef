"""fpga-ft: fault-tolerant quantized neural networks on FPGAs.

Selective triple modular redundancy (TMR) inserted into hls4ml designs, a bit-exact
C-simulation fault injector, vulnerability analysis, resource figures and a
cross-layer optimizer.
"""

__version__ = "0.1.0"

from fpga_ft.core.errors import FpgaFtError  # noqa: E402

__all__ = ["FpgaFtError", "__version__"]
