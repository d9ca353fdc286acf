# %% [markdown]
# [← README](../README.md) · **begin here** · [next: 00 — conventions →](00_conventions.ipynb)
#
# # Begin here — what a neural network computes, and how this course builds one
#
# This course builds a small neural-network library, `diydnn`, from nothing but NumPy, and proves
# every piece with a number before it is used. This notebook comes first: it shows the finished
# library at work in thirty lines, says what those lines compute, and lays out the map of the course,
# what you need to know before you start, and how to use the notebooks.
#
# It descends from the original [*diy-dnn*](https://github.com/tomjwalker/diy-dnn) project (a
# from-scratch NumPy network on MNIST, Keras-style layers, Trax-style Task and Loop objects). That
# project reported 75–86 % on MNIST and "exploding gradients"; <!-- quoted: the original diy-dnn README -->
# the chapters here redo it with a gradient check at every step, say wherever they correct it ("the
# original wrote …"), and reach the accuracies the experiments print (the README collects them). Its repository is linked so that every such claim can be checked against its code.
#
# (This notebook is paired with `diydnn/_00_begin_here.py` like every chapter, but it defines
# nothing: all of its cells are teaching cells.)

# %%
__doc__ = """Begin here: an orientation (what a network computes, a demo, the course map). It defines nothing."""

# %% tags=["active-ipynb"]
# import time
#
# import matplotlib.pyplot as plt
# import numpy as np
#
# import diydnn as dd
# from diydnn._00_conventions import quick_mode
#
# QUICK = quick_mode()   # the test suite sets DIYDNN_QUICK=1: the demo then trains on fewer images

# %% [markdown]
# ## 1. What a neural network computes
#
# A classifier for $28\times28$ images of handwritten digits takes an image as a vector
# $x \in \mathbb R^{784}$ (its pixels, in $[0, 1]$) and returns ten numbers, the probabilities it gives
# to the digits $0,\dots,9$. The network of the demo below is this function:
#
# $$h = \mathrm{ReLU}(x W_1 + b_1), \qquad z = h W_2 + b_2, \qquad \hat y = \mathrm{softmax}(z),
# \qquad \mathrm{softmax}(z)_j = \frac{e^{z_j}}{\sum_l e^{z_l}},$$
#
# with $W_1 \in \mathbb R^{784\times 64}$, $b_1\in\mathbb R^{64}$, $W_2\in\mathbb R^{64\times 10}$,
# $b_2\in\mathbb R^{10}$ and $\mathrm{ReLU}(t) = \max(0, t)$ element-wise. That is all: two matrix
# products, a kink and a normalisation. The $784\cdot64 + 64 + 64\cdot10 + 10 = 50{,}890$ numbers in
# $W_1, b_1, W_2, b_2$ are the **parameters**. **Training** chooses them to make
# the **loss** small, the mean over the training images of $-\log \hat y_{\text{true class}}$ (the
# cross-entropy: small when the network gives the right digit a high probability). It does so by
# **gradient descent**: compute the gradient of the loss with respect to every parameter
# (**backpropagation**, the chain rule run backwards through the function above), step every parameter
# a little against its gradient, repeat on the next batch of images.
#
# The chapters derive each of these pieces. Here is the whole pipeline at once.

# %% [markdown]
# ## 2. The finished library in thirty lines
#
# Load MNIST (from `DIYDNN_DATA_DIR`, a cache, or the network: chapter 08), build the network above,
# train it briefly with Adam, predict, and plot. A full run trains two epochs on 55,000 images (a few
# seconds); the test suite's quick mode trains one epoch on 6,000 and still asserts that the network learned.

# %% tags=["active-ipynb"]
# (X_train, y_train), (X_test, y_test) = dd.load_mnist()                    # 60,000 + 10,000 images, 784 pixels
# rng = np.random.default_rng(0)                                             # the one source of randomness
# (X_train, y_train), (X_val, y_val) = dd.train_val_split(X_train, y_train, n_val=5000, rng=rng)
# if QUICK:
#     X_train, y_train = X_train[:6000], y_train[:6000]
#
# model = dd.Sequential([dd.Dense(64), dd.ReLU(), dd.Dense(10)], n_in=784, rng=rng)   # x W1 + b1, ReLU, h W2 + b2
# model.summary()
# stream = dd.BatchStream(X_train, y_train, batch_size=64, rng=rng)         # shuffled mini-batches, endlessly
# n_steps = (1 if QUICK else 2) * stream.batches_per_epoch                  # two passes over the training images
# loop = dd.Loop(model, dd.TrainTask(stream, dd.SoftmaxCrossEntropy(), dd.Adam(lr=1e-3), n_steps_per_checkpoint=n_steps // 4),
#                eval_tasks=[dd.EvalTask((X_val, y_val), name="val")], progress=False)
# start = time.perf_counter()
# history = loop.run(n_steps)
# seconds = time.perf_counter() - start
#
# logits = model.predict(X_test)                                             # z for every test image
# y_hat = np.exp(logits - logits.max(1, keepdims=True)); y_hat /= y_hat.sum(1, keepdims=True)   # softmax
# test_accuracy = dd.accuracy(logits, y_test)
# print(f"{n_steps} steps on {len(X_train):,} images in {seconds:.1f} s; test accuracy {test_accuracy:.2%}")
# assert test_accuracy > (0.85 if QUICK else 0.95), "the demo network did not learn"
#
# fig, axes = plt.subplots(1, 2, figsize=(11, 3.3), gridspec_kw={"width_ratios": [1.2, 1]})
# axes[0].plot(*history.steps_values("train", "loss"), alpha=0.5, label="training batch")
# axes[0].plot(*history.steps_values("val", "loss"), "o-", label="validation")
# axes[0].set(xlabel="step", ylabel="cross-entropy", yscale="log", title="The loss falls as the network learns")
# axes[0].legend()
# axes[1].axis("off")
# for i in range(12):
#     ax = fig.add_axes([0.56 + 0.058 * (i % 6), 0.52 - 0.42 * (i // 6), 0.05, 0.36])
#     ax.imshow(X_test[i].reshape(28, 28), cmap="gray_r")
#     ax.set_title(f"{y_hat[i].argmax()} ({y_hat[i].max():.0%})", fontsize=8,
#                  color="k" if y_hat[i].argmax() == y_test[i] else "r")
#     ax.axis("off")
# fig.text(0.56, 0.93, "Predictions on test images (probability)", fontsize=10)
# plt.show()

# %% [markdown]
# Each line has a chapter behind it: `load_mnist`, `train_val_split` and `BatchStream` (08),
# `Sequential` (07), `Dense` (01), `ReLU` (02), `SoftmaxCrossEntropy` and `accuracy` (03), the
# default He initialisation (04), `Adam` (06), `TrainTask`, `EvalTask` and `Loop` (09).
#
# **Check: the library computes the formula of section 1.** The same three lines of NumPy, with the
# model's own parameters, give the same probabilities.

# %% tags=["active-ipynb"]
# W1, b1 = model.layers[0].params["W"], model.layers[0].params["b"]
# W2, b2 = model.layers[2].params["W"], model.layers[2].params["b"]
# x = X_test[:100]
# h = np.maximum(0, x @ W1 + b1)                      # ReLU(x W1 + b1)
# z = h @ W2 + b2
# by_hand = np.exp(z - z.max(1, keepdims=True)); by_hand /= by_hand.sum(1, keepdims=True)
# print(f"parameters: {sum(p.size for p in model.params.values()):,};  "
#       f"max |by hand - library| = {np.abs(by_hand - y_hat[:100]).max():.1e}")
# assert sum(p.size for p in model.params.values()) == 784 * 64 + 64 + 64 * 10 + 10
# assert np.allclose(by_hand, y_hat[:100], atol=1e-5)

# %% [markdown]
# **What the hidden units look at.** Column $j$ of $W_1$ holds one weight per pixel: reshaped to
# $28\times28$ it is a template, and hidden unit $j$ computes $h_j = \mathrm{ReLU}(\langle x, W_{1,\cdot j}\rangle + b_{1,j})$,
# the match between the image and its template. The cell checks that reading for one image and draws
# sixteen of the sixty-four templates after training (red: positive weights, blue: negative).

# %% tags=["active-ipynb"]
# j, image = 5, X_test[0]
# match = max(0.0, float(np.sum(image.reshape(28, 28) * W1[:, j].reshape(28, 28)) + b1[j]))
# print(f"hidden unit {j} on test image 0: template match {match:.4f}, layer output {h[0, j]:.4f}")
# assert abs(match - h[0, j]) < 1e-4
# fig, axes = plt.subplots(2, 8, figsize=(11, 3))
# for k, ax in enumerate(axes.flat):
#     template = W1[:, k].reshape(28, 28)
#     limit = np.abs(template).max()
#     ax.imshow(template, cmap="RdBu_r", vmin=-limit, vmax=limit)
#     ax.set_title(f"unit {k}", fontsize=8); ax.axis("off")
# fig.suptitle("Templates of 16 hidden units (columns of $W_1$, 28 x 28)")
# plt.show()

# %% [markdown]
# ## 3. The map of the course
#
# The library chapters derive one piece each — derivation, code, numerical check, picture — and
# their code cells *are* the package (`import diydnn as dd`). Read them in order; each ends with a
# summary and exercises with worked solutions (collapsed cells: click to open).
#
# | # | notebook | what it builds |
# |---|---|---|
# | 00 | [conventions](00_conventions.ipynb) | rows are samples; matrix calculus in one table; the numerical gradient check |
# | 01 | [Dense](01_dense.ipynb) | the layer contract; $Z = XW + b$ and its three gradients |
# | 02 | [activations](02_activations.ipynb) | ReLU; softmax, its Jacobian and the fast backward |
# | 03 | [cross-entropy](03_cross_entropy.ipynb) | the loss, and the fused softmax + cross-entropy gradient $(\hat Y - Y)/m$ |
# | 03a | [computational graph](03a_computational_graph.ipynb) | backprop as a graph of small operations; a tiny autodiff engine re-derives Dense, softmax-CE and BatchNorm |
# | 04 | [initialisers](04_initialisers.ipynb) | why the scale of the first weights matters; He and Glorot |
# | 05 | [BatchNorm](05_batchnorm.ipynb) | normalising with batch statistics, and its backward |
# | 06 | [optimisers](06_optimisers.ipynb) | SGD, momentum, Adam, AdamW; clip-norm |
# | 07 | [model](07_model.ipynb) | `Sequential`: forward through a list, backward in reverse; save and load |
# | 08 | [MNIST](08_mnist.ipynb) | the data: file format, download, validation split, batches |
# | 09 | [training](09_training.ipynb) | the training loop, checkpoints, callbacks; the first MNIST result |
# | 10 | [experiment toolkit](10_experiments.ipynb) | settings, run folders, run records, tables, paired comparisons |
# | 10a | [panels](10a_panels.ipynb) | sliders, Train in the background with Stop, set against the reference run |
# | 11 | [regularisation](11_regularisation.ipynb) | dropout, L2 and decoupled weight decay, learning-rate schedules, shifted images |
# | 12 | [convolution](12_convolution.ipynb) | images as (m, H, W, C); convolution as one matrix product over patches (im2col) and its backward |
# | 13 | [pooling](13_pooling.ipynb) | max and average pooling, BatchNorm on feature maps, a first CNN |
# | 14 | [where the time goes](14_performance.ipynb) | FLOPs of a step, the machine's peak, profiling, batch size and threads |
# | 15 | [diagnosing and tuning](15_diagnosing.ipynb) | health signals while training; the learning-rate range test; random vs grid search |
# | 16 | [designing a CNN](16_designing_cnns.ipynb) | receptive fields, where BatchNorm goes, a global-average-pooling head, residual blocks, saliency and occlusion |
#
# Then the **experiments** (`experiments/`) rerun the original's studies with the correct library:
# [clip-norm](experiments/01_clip_norm.ipynb), [full data](experiments/02_full_data.ipynb),
# [BatchNorm](experiments/03_batchnorm.ipynb), [architectures](experiments/04_architectures.ipynb),
# [evaluation](experiments/05_evaluation.ipynb), [the original's bug](experiments/06_original_bug.ipynb),
# [regularisation](experiments/07_regularisation.ipynb) (chapter 11's remedies on the full data),
# a [CNN](experiments/08_cnn.ipynb) (chapters 12–13), the [bug zoo](experiments/09_bug_zoo.ipynb) (each
# of the original's bugs as a switch, with the symptoms it leaves, and a "diagnose blind" exercise),
# [tuning](experiments/10_tuning.ipynb) (chapter 15's search against the hand-tuned recipe), and a
# [small ResNet](experiments/11_resnet.ipynb) (chapter 16's pieces in one network, against experiment 08's CNN). The
# [README](../README.md) has the results. (A test checks that this map names every notebook of the course.)
#
# ## 4. What you need before you start
#
# * **Python and NumPy**: arrays, shapes, slicing, broadcasting, `@` for the matrix product.
# * **Calculus**: derivatives and the chain rule; partial derivatives (a derivative with respect to
#   one variable, the others held fixed).
# * **Linear algebra**: matrix product and transpose; that $(AB)_{ik} = \sum_j A_{ij}B_{jk}$.
# * **A little probability**: a distribution over classes sums to 1; $\log$ and $\exp$.
#
# Nothing else: every formula is derived where it is used, and checked by a cell below it. The cell
# below tests the one fact the chapters use most — a partial derivative is the slope in one
# coordinate — in the form chapter 00 turns into the gradient check.

# %% tags=["active-ipynb"]
# f = lambda a, b: a ** 2 * b + np.sin(b)           # df/da = 2ab, df/db = a^2 + cos(b)
# a0, b0, eps = 1.5, -0.7, 1e-6
# slope_a = (f(a0 + eps, b0) - f(a0 - eps, b0)) / (2 * eps)
# slope_b = (f(a0, b0 + eps) - f(a0, b0 - eps)) / (2 * eps)
# print(f"df/da: {slope_a:.6f} (2ab = {2 * a0 * b0:.6f});  df/db: {slope_b:.6f} (a^2 + cos b = {a0 ** 2 + np.cos(b0):.6f})")
# assert abs(slope_a - 2 * a0 * b0) < 1e-6 and abs(slope_b - (a0 ** 2 + np.cos(b0))) < 1e-6

# %% [markdown]
# ## 5. How to use the notebooks
#
# * **Run All first** (menu *Run → Run All Cells*). The notebooks are stored with their outputs, so
#   you can read them as they are; running them makes every cell live, and every `assert` re-checks
#   a claim of the text on your machine.
# * **Sliders and *Train* buttons need a live kernel.** The experiment notebooks have panels with
#   sliders; on a code host or in a static view they are inert. Their defaults reproduce the stored
#   figures.
# * **Run All trains nothing that is recorded.** The experiments' reference runs are committed as small *run
#   records* (`experiments/records/`), so Run All reads them instead of training; `DIYDNN_RETRAIN=1` trains
#   every one again (chapter 10).
# * **A *Train* runs in the background.** The button returns at once, the curves update while it trains, other
#   cells still run, and *Stop* ends it at the next step (chapter 10a). A full MNIST run takes a minute or more on
#   a laptop's CPU; the line under the button estimates it before you press.
# * **Quick mode.** The test suite runs every notebook with `DIYDNN_QUICK=1`, which shrinks long runs
#   (each shrunk run still asserts that it learned). Unset, the notebooks run in full.
# * **Editing.** The code cells of the chapters *are* the package: start JupyterLab from the
#   repository root (see the README) so that saving a chapter rewrites its module in `diydnn/`.
#   Cells tagged `active-ipynb` only teach; they are commented out in the module.
# * **Exercises** end every chapter. The worked solutions are in collapsed cells below them (click
#   the bar to open), and what a solution prints stays in a closed box ("Output of the solution") until
#   you open it, even after Run All; the tests run them too, so they stay true.

# %% [markdown]
# ## Summary
#
# * A classifier network is a function: matrix products, element-wise non-linearities, a softmax.
#   Training = gradient descent on the cross-entropy, gradients by backpropagation.
# * `import diydnn as dd` gives the finished library; the chapters build it piece by piece and check
#   every piece numerically.
#
# ## Exercises
#
# 1. Count the parameters of a 784–256–128–10 network by hand, then check your count with
#    `dd.Sequential(...).summary()`.
# 2. In the demo, which test image does the network get wrong with the highest confidence? Show it
#    with its label and the predicted probabilities.
# 3. Replace `dd.Adam(lr=1e-3)` by `dd.SGD(lr=1e-3)` in the demo. Is the test accuracy after the same
#    number of steps higher or lower? (Chapter 06 explains why.)

# %% [markdown]
# **Solutions 1, 2 and 3** — try the exercises first. The worked solutions are in the collapsed cells below (click a bar to open it; outputs are collapsed too).

# %% [markdown] tags=["solution"]
# <details><summary><b>Solution 1</b> (click to open)</summary>
#
# Each Dense layer has $n_{in} n_{out}$ weights and $n_{out}$ biases:
# $784\cdot256 + 256 + 256\cdot128 + 128 + 128\cdot10 + 10 = 235{,}146$.
#
# </details>

# %% jupyter={"outputs_hidden": true, "source_hidden": true} tags=["active-ipynb", "solution"]
# # Solution 1.
# from diydnn._00_conventions import hidden_output   # a solution's output shows only when opened
# with hidden_output():
#     by_hand = 784 * 256 + 256 + 256 * 128 + 128 + 128 * 10 + 10
#     big = dd.Sequential([dd.Dense(256), dd.ReLU(), dd.Dense(128), dd.ReLU(), dd.Dense(10)], n_in=784,
#                         rng=np.random.default_rng(0))
#     big.summary()
#     assert by_hand == sum(p.size for p in big.params.values()) == 235_146

# %% [markdown] tags=["solution"]
# <details><summary><b>Solution 2</b> (click to open)</summary>
#
# Among the wrongly classified test images, take the one with the largest predicted
# probability.
#
# </details>

# %% jupyter={"outputs_hidden": true, "source_hidden": true} tags=["active-ipynb", "solution"]
# # Solution 2.
# with hidden_output():
#     wrong = np.flatnonzero(y_hat.argmax(1) != y_test)
#     worst = wrong[np.argmax(y_hat[wrong].max(1))]
#     print(f"test image {worst}: label {y_test[worst]}, predicted {y_hat[worst].argmax()} with probability "
#           f"{y_hat[worst].max():.1%}; probability of the true label {y_hat[worst, y_test[worst]]:.1%}")
#     assert y_hat[worst].argmax() != y_test[worst] and y_hat[worst].max() >= y_hat[wrong].max(1).max()
#     fig, ax = plt.subplots(figsize=(2, 2))
#     ax.imshow(X_test[worst].reshape(28, 28), cmap="gray_r"); ax.axis("off")
#     ax.set_title(f"label {y_test[worst]}, predicted {y_hat[worst].argmax()}", fontsize=9)

# %% [markdown] tags=["solution"]
# <details><summary><b>Solution 3</b> (click to open)</summary>
#
# With the same learning rate and number of steps, plain SGD moves each parameter by
# $\alpha\,\partial L/\partial\theta$ — tiny steps when the gradients are small — while Adam rescales
# every step to about $\alpha$. After two short epochs SGD at $\alpha = 10^{-3}$ is far behind.
#
# </details>

# %% jupyter={"outputs_hidden": true, "source_hidden": true} tags=["active-ipynb", "solution"]
# # Solution 3.
# with hidden_output():
#     sgd_model = dd.Sequential([dd.Dense(64), dd.ReLU(), dd.Dense(10)], n_in=784, rng=np.random.default_rng(0))
#     sgd_stream = dd.BatchStream(X_train, y_train, batch_size=64, rng=np.random.default_rng(0))
#     dd.Loop(sgd_model, dd.TrainTask(sgd_stream, dd.SoftmaxCrossEntropy(), dd.SGD(lr=1e-3), n_steps_per_checkpoint=n_steps),
#             progress=False).run(n_steps)
#     sgd_accuracy = dd.accuracy(sgd_model.predict(X_test), y_test)
#     print(f"after {n_steps} steps: Adam {test_accuracy:.2%}, SGD {sgd_accuracy:.2%}")
#     assert sgd_accuracy < test_accuracy

# %% [markdown]
# ---
# [← README](../README.md) · **begin here** · [next: 00 — conventions →](00_conventions.ipynb)
