"""The CJK ideograph ranges of Google's ``_is_chinese_char`` (``bert/tokenization.py``, also
HuggingFace's): the one definition in the project.

Used by the ``chinese_ref`` rule (segmentation/refs.py) and the tests. It imports nothing, so that
the build-time table generator (csrc/gen_unicode_tables.py, which runs before the package is built)
can load this file by path. It must not grow into anything the tokenizer kernel does not need.
"""

__all__ = ["CJK_RANGES", "is_cjk"]

# (first, last) code point, both inclusive, in the order Google's function tests them
CJK_RANGES = (
    (0x4E00, 0x9FFF), (0x3400, 0x4DBF), (0x20000, 0x2A6DF), (0x2A700, 0x2B73F),
    (0x2B740, 0x2B81F), (0x2B820, 0x2CEAF), (0xF900, 0xFAFF), (0x2F800, 0x2FA1F),
)


def is_cjk(cp: int) -> bool:
    """Google's ``_is_chinese_char(cp)``: ``cp`` lies in one of the 8 ranges."""
    for lo, hi in CJK_RANGES:
        if lo <= cp <= hi:
            return True
    return False
