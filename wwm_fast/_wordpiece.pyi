"""Native WordPiece tokenizer (csrc/wordpiece.h). Private: use wwm_fast.FullTokenizer."""

from typing import List, Optional, Tuple

import numpy as np

UNIDATA_VERSION: str
MAX_THREADS: int
MAX_LINE_BYTES: int

class FullTokenizer:
    def __init__(self, keys: List[str], ids: np.ndarray, unk_id: int, do_lower_case: bool,
                 max_input_chars_per_word: int) -> None: ...
    def encode_lines(self, lines: List[str], num_threads: int
                     ) -> Tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]: ...
    def encode_buffer(self, data: bytes, line_splits: Optional[np.ndarray], errors: str,
                      strip_cr: bool, num_threads: int, with_offsets: bool = True
                      ) -> Tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray,
                                 np.ndarray, int, int, int]: ...
