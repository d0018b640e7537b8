"""The reading wing: everything that reads digits, and nothing that needs torch or OpenCV.

preprocess (any picture -> MNIST form), segment (a picture of numbers -> digits), predictor
(the Predictor every interface uses), backends (ONNX Runtime; other formats handed in),
calibrate (temperature and refusal threshold), cards (a model's JSON card), registry (the
models folder), wire (the JSON of a reading). It never imports digitrec.training:
tests/test_architecture.py walks the imports to keep it so.
"""
