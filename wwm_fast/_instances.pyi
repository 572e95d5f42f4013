"""Native instance builders (csrc/instances.h). Private: use wwm_fast.build_instances."""

from typing import Dict, List, Tuple

import numpy as np

WORD_SIZE_HIST_LEN: int
MAX_SEQ_LENGTH: int

def build_compat(corpus: Dict[str, np.ndarray], seed_key: List[int], max_seq_length: int,
                 max_predictions: int, masked_lm_prob: float, short_seq_prob: float,
                 dupe_factor: int, whole_word: bool, cls_id: int, sep_id: int, mask_id: int,
                 rand_ids: np.ndarray) -> Dict[str, np.ndarray]: ...
def build_fast(corpus: Dict[str, np.ndarray], seed: int, shard: int, max_seq_length: int,
               max_predictions: int, masked_lm_prob: float, short_seq_prob: float,
               dupe_factor: int, next_sentence: bool, rand_ids: np.ndarray
               ) -> Dict[str, np.ndarray]: ...
def shuffled_order(n: int, seed: int, shard: int) -> np.ndarray: ...
def _py_pyrandom(seed_key: List[int], ops: List[Tuple[str, int]]) -> list: ...
def _py_keyed_rng(key: int, n: int, below: int) -> List[int]: ...
