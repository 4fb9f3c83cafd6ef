"""Stage 5, deploy: from a chosen design to the vendor tools and a board.

vendor (run Vitis HLS / Vivado HLS / Vivado on a generated project), bringup (the board
bring-up kit: test vectors, golden outputs, checker).
"""
