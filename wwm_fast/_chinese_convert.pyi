"""Native OpenCC-compatible converter (csrc/chinese_convert.h). Private: use
wwm_fast.segmentation.convert."""

from typing import List, Tuple

import numpy as np

LINE_CONVERTED: int
LINE_FAILED: int
LINE_REFERENCE: int
LINE_WHITESPACE: int

class Converter:
    def __init__(self, dicts: List[Tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]],
                 program: np.ndarray) -> None: ...
    def convert(self, text: np.ndarray, line_offsets: np.ndarray, separator: int = -1,
                ws_table: np.ndarray = ...
                ) -> Tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]: ...
    def convert_joined(self, text: np.ndarray, n_lines: int, separator: int,
                       ws_table: np.ndarray = ...
                       ) -> Tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]: ...
    def convert_utf8(self, text: np.ndarray, n_lines: int, separator: int,
                     ws_table: np.ndarray = ...
                     ) -> Tuple[bytes, np.ndarray, np.ndarray, np.ndarray, np.ndarray]: ...
