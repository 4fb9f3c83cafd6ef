"""Stage 1, generate: from a model to a compiled design.

modelio (load models and data), intake (what MODEL names, the user's hls4ml config, the
prepared model), bitexact (the bit-exactness contract), convert (QKeras -> hls4ml with the
protection tags), keep_replicas (synthesis constraints that keep the replicas), design (the
cached design: HLS project + csim library). TensorFlow and hls4ml are imported here, lazily.
"""
