"""The training wing: what makes and changes models, with PyTorch (the `train` extra).

config (recipes and presets), nets (the architectures), augment, fit (a training run:
prepare, the epoch loop, finish), measure, card (the one card builder), checkpoint
(safetensors + card), export (ONNX with a parity check), ensemble, finetune, torch_backend
(the Predictor's loader for checkpoints), and the data generators banks, redraw, synthetic.
It may use the reading wing (to_mnist, calibration, cards); never the other way round.
Importing this package imports nothing; its modules import torch.
"""
