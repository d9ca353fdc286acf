"""diydnn: a neural-network library built from scratch in NumPy, one literate notebook at a time.

The numbered modules (_00_conventions.py, _01_dense.py, ...) are the code cells of the
notebooks in notebooks/, paired by jupytext. This file names the public API.
"""
from diydnn._00_conventions import check_layer, check_loss, numerical_gradient, rel_error
from diydnn._01_dense import Dense, Layer, NonFiniteError
from diydnn._02_activations import ReLU, Softmax
from diydnn._03_cross_entropy import (CategoricalCrossEntropy, Loss, SoftmaxCrossEntropy, accuracy,
                                      one_hot)
from diydnn._04_initialisers import (GlorotUniform, HeNormal, Initialiser, RandomNormal,
                                     get_initialiser)

__version__ = "0.1.0"
