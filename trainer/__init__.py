"""wwm_trainer: TensorFlow 2 BERT pre-training with LAMB (installed from the trainer/ folder).

Google-checkpoint compatible: variables, optimizer slots and `global_step` are saved under the TF1
names of google-research/bert and ymcui/LAMB_Optimizer_TF. Public entries:

* ``BertConfig``            -- bert_config.json
* ``BertPretrainingModel``  -- BERT + MLM/NSP heads, Google variable names
* ``Lamb``, ``AdamWeightDecay``, ``WarmupPolynomialDecay`` -- optimizers and schedule
* ``TrainOptions``, ``Trainer``, ``run`` -- the training loop behind the ``wwm-train`` CLI
* ``init_from_checkpoint``, ``export_model`` -- Google-layout checkpoint I/O, and transformers
  folders both ways (``wwm_trainer.hf``)

The entries are imported on first use: ``import wwm_trainer`` and ``wwm-train --help`` load no
TensorFlow (TensorFlow's import takes seconds), and ``wwm-train`` without TensorFlow says which
extra to install instead of failing on the import.
"""

import importlib

__version__ = "0.1.0"

# public name -> the module that defines it
_EXPORTS = {
    "AdamWeightDecay": "optimization",
    "BertConfig": "config",
    "BertPretrainingModel": "modeling",
    "Lamb": "optimization",
    "NonFiniteLossError": "training",
    "TrainOptions": "training",
    "Trainer": "training",
    "WarmupPolynomialDecay": "optimization",
    "export_model": "checkpoint",
    "google_variable_shapes": "config",
    "init_from_checkpoint": "checkpoint",
    "pretraining_loss_and_metrics": "modeling",
    "run": "training",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(__all__))
