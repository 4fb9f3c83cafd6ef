"""The light core every stage shares: no TensorFlow, hls4ml, QKeras or Keras, and no import
of any other stage (``tests/test_layout.py`` checks both).

errors (``FpgaFtError``), layers (``LayerInfo``, ``FixedType``), fixedpoint (ap_fixed
types), plan (``ProtectionPlan``), structure (the one description of each protection
scheme), faults and exposure (the fault model and the bits it exposes), stats (intervals),
boards, paths (data folders), safeyaml, outputs (checked, atomic output locations), cache
(the on-disk cache, its locks and fingerprints), jsonio (JSON defaults), classify (classes
from outputs).
"""
