"""Native Model Garden compat builder (csrc/garden.h). Private: use wwm_fast.create_instances
(mode="compat", reference="garden")."""

from typing import Dict, List, Tuple

import numpy as np

MAX_NGRAM_WORK: int  # max_ngram_size * max_seq_length may be at most this

def build_garden(corpus: Dict[str, np.ndarray], seed_key: List[int], global_seed_key: List[int],
                 max_seq_length: int, max_predictions: int, masked_lm_prob: float,
                 short_seq_prob: float, dupe_factor: int, whole_word: bool, max_ngram_size: int,
                 cls_id: int, sep_id: int, mask_id: int, rand_ids: np.ndarray
                 ) -> Dict[str, np.ndarray]: ...
def rename_features(records: np.ndarray, renames: List[Tuple[str, str]]) -> np.ndarray: ...
def _py_mask_garden(tokens: List[int], special: List[bool], joins: List[bool], whole_word: bool,
                    seed_key: List[int], global_seed_key: List[int], max_predictions: int,
                    masked_lm_prob: float, mask_id: int, rand_ids: np.ndarray,
                    max_ngram_size: int, repeats: int
                    ) -> Tuple[List[Tuple[List[int], List[int], List[int]]], float, float]: ...
