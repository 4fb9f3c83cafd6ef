"""Stage 3, measure: what a design costs and which parts of a network matter.

resources (the offline resource / latency estimator), reports (Vivado / Vitis HLS report
parsers), vulnerability (neuron and bit vulnerability methods), twin (the structural Verilog
twin: Yosys cost and SAT fault proof, behind ``fpga-ft verify``).
"""
