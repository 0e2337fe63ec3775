"""The network in other runtimes' formats, checked against PyTorch before it is written: ONNX (onnx.py), shared
by the browser edition and the CPU inference backends."""
