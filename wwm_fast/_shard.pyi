"""Fast mode's native shard kernel and vocab parser (csrc/fast_shard.h). Private: used by
wwm_fast.shard.run_shard (and kernel_for)."""

from typing import Dict, List, Optional, Tuple, Union

MAX_THREADS: int
WORD_SIZE_HIST_LEN: int

_Bytes = Union[bytes, bytearray, memoryview]

class Vocab:
    """Google's load_vocab on a vocab file's bytes (wwm_fast.tokenization.load_vocab)."""
    def __init__(self, data: _Bytes) -> None: ...
    @property
    def error_line(self) -> int: ...  # first invalid UTF-8 line (0-based), -1: none
    @property
    def n_lines(self) -> int: ...
    def __len__(self) -> int: ...
    def find(self, token: str) -> int: ...  # the entry's id, -1 when absent
    def items(self) -> List[Tuple[str, int]]: ...

class Chunk:
    """Framed records (a read-only buffer); valid while the shard makes the next two chunks."""
    def __len__(self) -> int: ...

class Shard:
    def next_chunk(self, num_threads: int = 1) -> Optional[Chunk]: ...
    def figures(self) -> Dict[str, Union[int, List[int]]]: ...
    @property
    def n_instances(self) -> int: ...
    @property
    def done(self) -> bool: ...

class Kernel:
    def __init__(self, vocab: Vocab, unk_token: str, do_lower_case: bool,
                 max_input_chars_per_word: int, max_seq_length: int, max_predictions: int,
                 masked_lm_prob: float, short_seq_prob: float, dupe_factor: int,
                 whole_word: bool, next_sentence: bool, seed: int,
                 chunk_bytes: int = 4 << 20) -> None: ...
    # (shard, None), or (None, (line, byte, length, line_begin, line_end)) for invalid UTF-8
    def text_shard(self, data: _Bytes, errors: str, index: int, num_threads: int
                   ) -> Tuple[Optional[Shard], Optional[Tuple[int, int, int, int, int]]]: ...
    def documents_shard(self, ids: _Bytes, word_start: _Bytes, sent_splits: _Bytes,
                        doc_splits: _Bytes, index: int, lines: int) -> Shard: ...
    @property
    def max_record_bytes(self) -> int: ...
