"""wwm_trainer: TensorFlow 2 BERT pre-training with LAMB (installed from the trainer/ folder).

Google-checkpoint compatible: variables, optimizer slots and `global_step` are saved under the TF1
names of google-research/bert and ymcui/LAMB_Optimizer_TF. Public entries:

* ``BertConfig``            -- bert_config.json
* ``BertPretrainingModel``  -- BERT + MLM/NSP heads, Google variable names
* ``Lamb``, ``AdamWeightDecay``, ``WarmupPolynomialDecay`` -- optimizers and schedule
* ``TrainOptions``, ``Trainer``, ``run`` -- the training loop behind the ``wwm-train`` CLI
* ``init_from_checkpoint``, ``export_model`` -- Google-layout checkpoint I/O, and transformers
  folders both ways (``wwm_trainer.hf``)
"""

from .checkpoint import export_model, init_from_checkpoint
from .config import BertConfig
from .modeling import BertPretrainingModel, google_variable_shapes, pretraining_loss_and_metrics
from .optimization import AdamWeightDecay, Lamb, WarmupPolynomialDecay
from .training import NonFiniteLossError, TrainOptions, Trainer, run

__version__ = "0.1.0"

__all__ = [
    "AdamWeightDecay",
    "BertConfig",
    "BertPretrainingModel",
    "Lamb",
    "NonFiniteLossError",
    "TrainOptions",
    "Trainer",
    "WarmupPolynomialDecay",
    "export_model",
    "google_variable_shapes",
    "init_from_checkpoint",
    "pretraining_loss_and_metrics",
    "run",
]
