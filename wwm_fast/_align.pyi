"""Native whole-word aligner (csrc/align.h). Private: use wwm_fast.align_words."""

import numpy as np

MAX_THREADS: int

def align_words(tok_starts: np.ndarray, tok_ends: np.ndarray, is_subword: np.ndarray,
                tok_splits: np.ndarray, word_starts: np.ndarray, word_ends: np.ndarray,
                word_splits: np.ndarray, word_start: np.ndarray, fallback: np.ndarray,
                num_threads: int) -> int: ...
