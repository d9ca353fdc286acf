"""diydnn: a neural-network library built from scratch in NumPy, one literate notebook at a time.

The numbered modules (_00_conventions.py, _01_dense.py, ...) are the code cells of the
notebooks in notebooks/, paired by jupytext. This file names the public API.
"""
from diydnn._00_conventions import check_layer, check_loss, numerical_gradient, rel_error
from diydnn._01_dense import Dense, Layer, NonFiniteError
from diydnn._02_activations import ReLU, Softmax
from diydnn._03_cross_entropy import (CategoricalCrossEntropy, Loss, SoftmaxCrossEntropy, accuracy,
                                      one_hot)
from diydnn._03a_computational_graph import Value, data_of, grad_of, to_values
from diydnn._04_initialisers import (GlorotUniform, HeNormal, Initialiser, RandomNormal,
                                     get_initialiser)
from diydnn._05_batchnorm import BatchNorm
from diydnn._06_optimisers import (SGD, Adam, AdamW, Optimiser, clip_by_global_norm, get_optimiser,
                                   global_norm)
from diydnn._07_model import LAYER_TYPES, Sequential, register_layer
from diydnn._08_mnist import (BatchStream, MNISTChecksumError, MNISTDownloadError, batches, load_mnist, mnist_dir,
                              read_idx, train_val_split)
from diydnn._09_training import (Callback, DivergenceGuard, EarlyStopping, EvalTask, History, Loop, TrainTask,
                                 WandbLogger, load_checkpoint, save_checkpoint)
from diydnn._10_experiments import (RunExistsError, RunLockedError, check_record, check_settings, cnn, free_run_name,
                                    load_model, load_runs, mlp, paired_comparison, results_table, run_experiment,
                                    run_or_load)
from diydnn._10a_panels import experiment_controls
from diydnn._11_regularisation import (Augment, AugmentedStream, Constant, CosineDecay, DecayMask, Dropout,
                                       LinearWarmup, Schedule, StepDecay, get_schedule)
from diydnn._12_convolution import Conv2D, Flatten, Reshape, col2im, col2im_offsets, im2col
from diydnn._13_pooling import AvgPool2D, GlobalAveragePool, MaxPool2D
from diydnn._14_performance import matmul_flops, set_threads
from diydnn._15_diagnosing import (ActivationStats, DeadUnits, ExponentialRamp, UpdateRatio, grid_trials, health_callbacks,
                                   importance, lr_range_test, parallel_coordinates, pick_lr, random_trials, run_search,
                                   search_runs)
from diydnn._16_designing_cnns import Residual, class_score_gradient, occlusion_map, receptive_field, saliency

__version__ = "0.1.0"
