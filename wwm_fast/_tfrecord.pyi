"""Native TFRecord writer (csrc/tfrecord.h). Private: use wwm_fast.tfrecord."""

from typing import Dict, List, Tuple

import numpy as np

MAX_THREADS: int

def serialize_into(ids: np.ndarray, instances: Dict[str, np.ndarray], order: np.ndarray,
                   max_seq_length: int, max_predictions: int, cls_id: int, sep_id: int,
                   out: np.ndarray, num_threads: int = 1) -> Tuple[int, int]: ...
def max_record_bytes(max_seq_length: int, max_predictions: int) -> int: ...
def frame_records(records: List[bytes]) -> bytes: ...
def crc32c(data: bytes | memoryview | np.ndarray) -> int: ...
