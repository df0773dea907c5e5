"""The names the networks, priors, initialisations and losses answer to, without torch: a run's
configuration (:class:`~pydiff.training.config.TrainConfig`) checks them, and the command line
offers them, without loading torch.  The modules that build each one import their names from here.
"""

from __future__ import annotations

# the 2021 NN1 + NN2 (Table 1); the 2024 encoder-decoder and U-Net; neuraloperator's FNO
NETWORKS = ("surrogate", "encdec", "unet", "fno")
PRIORS = ("none", "constant-d")  # pydiff.nn.prior
INITS = ("default", "kaiming", "flux")  # pydiff.nn.surrogate2021
POOLINGS = ("table1", "code")  # NN2's encoder: Table 1's shapes or the original code's padded pool
# pydiff.nn.losses.LOSSES, in its order (a test holds the two equal)
LOSS_NAMES = ("MAE", "MSE", "fourth-power", "Huber", "exp-MAE", "exp-MSE", "exp-Huber", "tanh-MAE", "tanh-MSE",
              "tanh-Huber", "rel-L2")
