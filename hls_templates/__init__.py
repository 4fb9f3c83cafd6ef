"""fpga-ft's HLS C++ headers and the hls4ml template classes that insert them."""

from hls_templates.templates import HEADER_DIR, register

__all__ = ["HEADER_DIR", "register"]
