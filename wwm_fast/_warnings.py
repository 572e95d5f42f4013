"""``OutputWarning``: the output was written, but it is probably not what the user meant.

Raised with ``warnings.warn`` by the API (``create_instances``, ``train_ltp_segmenter``), so that
Python callers can filter or escalate it (``warnings.simplefilter("error", OutputWarning)``); the
CLI prints each as one ``wwm-fast COMMAND: warning: ...`` line. This module holds only the class
and the thresholds, with the reasons for each.
"""

from __future__ import annotations

import warnings

__all__ = ["OutputWarning", "warn", "UNK_RATE_WARNING", "WWM_CONTINUATION_WARNING",
           "SEGMENTED_WORD_CHARS_WARNING"]


class OutputWarning(UserWarning):
    """The output was written but is probably not what was meant (see the message)."""


#: [UNK] share of the corpus tokens above which ``create`` warns. Google's Chinese vocab gives
#: 1.05% on People's Daily 1998 and 0.29% on the reviews corpus; the same texts read as GBK bytes
#: with ``--errors ignore`` give 85% and 64%. 5% is well above clean Chinese text and far below a
#: wrong encoding or a wrong vocab.
UNK_RATE_WARNING = 0.05

#: With ``do_whole_word_mask`` and no word boundaries (no segmenter, no segmentation cache), the
#: share of tokens that continue a whole word (WordPiece ``##`` pieces) under which ``create`` warns
#: that the masking is practically per token: 1.2% on People's Daily and 0.28% on the reviews
#: corpus with Google's Chinese vocab, against ~10% for English text with an English vocab (where
#: ``##`` grouping is the intended whole word masking), and 39% with LTP words (the demo).
WWM_CONTINUATION_WARNING = 0.05

#: ``train-segmenter``: mean characters per word above which the training text does not look
#: segmented. Gold-segmented People's Daily averages 1.64 characters per word (Chinese words
#: average under 2); the same text unsegmented gives one "word" per sentence, 41 characters.
SEGMENTED_WORD_CHARS_WARNING = 4.0


def warn(message: str, stacklevel: int = 3) -> None:
    """``warnings.warn(message, OutputWarning)`` pointing at the caller of the API function."""
    warnings.warn(message, OutputWarning, stacklevel=stacklevel)
