"""Native whole-word and n-gram samplers (csrc/masking.h, csrc/ngram.h). Private: use
wwm_fast.sample_masks."""

from typing import Dict

import numpy as np

WORD_SIZE_HIST_LEN: int
MAX_THREADS: int

def sample_masks(corpus: Dict[str, np.ndarray], instances: Dict[str, np.ndarray],
                 max_seq_length: int, max_predictions: int, masked_lm_prob: float,
                 whole_word: bool, mask_id: int, rand_ids: np.ndarray,
                 num_threads: int) -> Dict[str, np.ndarray]: ...

MAX_NGRAM_TABLE_SIZE: int

def sample_ngram_masks(corpus: Dict[str, np.ndarray], instances: Dict[str, np.ndarray],
                       max_seq_length: int, max_predictions: int, masked_lm_prob: float,
                       whole_word: bool, ngram_probs: np.ndarray, mask_id: int,
                       rand_ids: np.ndarray, num_threads: int) -> Dict[str, np.ndarray]: ...
