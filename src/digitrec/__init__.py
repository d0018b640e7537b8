"""digitrec: handwritten digit recognition, from MNIST training to a drawing page.

Importing the package is cheap and never imports torch; inference runs on ONNX Runtime.
"""

__version__ = "0.1.0"
