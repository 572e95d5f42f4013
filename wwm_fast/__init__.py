"""wwm_fast: exact and fast Chinese whole-word-masking BERT pre-training data.

Stages of the data flow, one public entry each:

* ``FullTokenizer``   -- WordPiece tokenization, Google-exact, native (wwm_fast.tokenization)
* ``align_words``     -- whole-word flags from a word segmentation, native (wwm_fast.alignment)
"""

from . import _check_build  # noqa: F401  (fails with build instructions when unbuilt)
from .alignment import AlignResult, WordSpans, align_words
from .tokenization import Encoding, FullTokenizer

__version__ = "0.1.0"

__all__ = [
    "AlignResult",
    "Encoding",
    "FullTokenizer",
    "WordSpans",
    "align_words",
]
