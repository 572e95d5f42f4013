"""The references, loaded once: Google's bert/tokenization.py (PyPI bert-tensorflow 1.0.4).

bert-tensorflow imports tensorflow.compat.v1 (only for GFile) and defines an absl flag that must
be marked parsed before use.
"""

from __future__ import annotations

import functools


@functools.lru_cache(maxsize=None)
def google_tokenization():
    from absl import flags

    if not flags.FLAGS.is_parsed():
        flags.FLAGS.mark_as_parsed()
    from bert import tokenization

    return tokenization


@functools.lru_cache(maxsize=None)
def google_tokenizer(vocab_file: str, do_lower_case: bool = True):
    return google_tokenization().FullTokenizer(vocab_file, do_lower_case=do_lower_case)


def google_ids(tokenizer, text):
    return tokenizer.convert_tokens_to_ids(tokenizer.tokenize(text))
