"""Generate csrc/unicode_tables.inc from the building interpreter's ``unicodedata``.

The reference tokenizer (Google's ``bert/tokenization.py``) asks Python's ``unicodedata`` and
``str.lower``/``str.isspace`` about every character, so the only way to be exact is to take every
property from the same source. ``setup.py`` runs this script at build time; the version of the
Unicode database used is compiled in (``UNIDATA_VERSION``) and checked at import.

Per code point we store a small record (``CharProps`` in unicode_props.h: flags, ccc, map_len,
map_off):

* flags: DROP (removed by ``_clean_text``), WS (turned into " " by ``_clean_text``), SPACE
  (``str.isspace``, a separator for ``str.split``), CJK (``_is_chinese_char``), PUNCT
  (``_is_punctuation``), MN (category Mn, dropped by ``_run_strip_accents``), CASED / CASE_IGNORABLE
  (the two properties Python's final-sigma rule in ``str.lower`` consults), REORDER (combining class
  != 0 and not Mn: canonical reordering can move it even after Mn marks are dropped), HANGUL (a
  precomposed syllable, decomposed algorithmically as ``unicodedata.normalize`` does).
* ccc: canonical combining class.
* the lower-case mapping followed by NFD (``unicodedata.normalize("NFD", c.lower())``), stored only
  where it differs from the character itself.

CASED and CASE_IGNORABLE are not exposed by ``unicodedata``; they are read back from ``str.lower``
itself: "cΣ".lower() ends in final sigma iff c is cased and not case-ignorable, and "AcΣ".lower()
does iff c is case-ignorable or cased.
"""

import sys
import unicodedata

MAX_CP = 0x110000
BLOCK = 256

F_DROP = 1 << 0
F_WS = 1 << 1
F_SPACE = 1 << 2
F_CJK = 1 << 3
F_PUNCT = 1 << 4
F_MN = 1 << 5
F_CASED = 1 << 6
F_CASE_IGNORABLE = 1 << 7
F_REORDER = 1 << 8
F_HANGUL = 1 << 9

FINAL_SIGMA = "\u03c2"


def _load_cjk():
    """wwm_fast/_cjk.py, the project's one definition of Google's CJK ranges, loaded by path:
    this script runs at build time, before the package is importable."""
    import importlib.util
    import os

    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, "wwm_fast", "_cjk.py")
    spec = importlib.util.spec_from_file_location("_wwm_fast_cjk", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_cjk = _load_cjk()
CJK_RANGES = _cjk.CJK_RANGES
is_cjk = _cjk.is_cjk


def is_punct(cp, cat):
    if 33 <= cp <= 47 or 58 <= cp <= 64 or 91 <= cp <= 96 or 123 <= cp <= 126:
        return True
    return cat.startswith("P")


def props_of(cp):
    c = chr(cp)
    cat = unicodedata.category(c)
    flags = 0
    if cp == 0 or cp == 0xFFFD or (cat in ("Cc", "Cf") and c not in "\t\n\r"):
        flags |= F_DROP
    if c in " \t\n\r" or cat == "Zs":
        flags |= F_WS
    if c.isspace():
        flags |= F_SPACE
    if is_cjk(cp):
        flags |= F_CJK
    if is_punct(cp, cat):
        flags |= F_PUNCT
    if cat == "Mn":
        flags |= F_MN
    if 0xD800 <= cp <= 0xDFFF:
        cased_plain = ignorable = False  # lone surrogates: neither (they cannot be lower-cased)
    else:
        cased_plain = (c + "\u03a3").lower().endswith(FINAL_SIGMA)
        ignorable = (not cased_plain) and ("A" + c + "\u03a3").lower().endswith(FINAL_SIGMA)
    if cased_plain:
        flags |= F_CASED
    if ignorable:
        flags |= F_CASE_IGNORABLE
    ccc = unicodedata.combining(c)
    if ccc and cat != "Mn":
        flags |= F_REORDER
    if 0xAC00 <= cp <= 0xD7A3:
        flags |= F_HANGUL
        mapping = None  # decomposed algorithmically in the kernel
    elif 0xD800 <= cp <= 0xDFFF:
        mapping = None
    else:
        lowered = unicodedata.normalize("NFD", c.lower())
        mapping = None if lowered == c else tuple(ord(x) for x in lowered)
    return flags, ccc, mapping


def main(out_path):
    records = {}  # (flags, ccc, mapping) -> index
    record_list = []
    map_data = []
    map_index = {}
    per_cp = []
    for cp in range(MAX_CP):
        flags, ccc, mapping = props_of(cp)
        if mapping is None:
            moff, mlen = 0, 0
        else:
            if mapping not in map_index:
                map_index[mapping] = len(map_data)
                map_data.extend(mapping)
            moff, mlen = map_index[mapping], len(mapping)
        key = (flags, ccc, mlen, moff)
        idx = records.get(key)
        if idx is None:
            idx = records[key] = len(record_list)
            record_list.append(key)
        per_cp.append(idx)
    if len(record_list) >= 65536:
        raise SystemExit("too many distinct character records for uint16 indices")

    blocks = {}
    stage1 = []
    stage2 = []
    for b in range(MAX_CP // BLOCK):
        block = tuple(per_cp[b * BLOCK:(b + 1) * BLOCK])
        bi = blocks.get(block)
        if bi is None:
            bi = blocks[block] = len(blocks)
            stage2.extend(block)
        stage1.append(bi)

    def rows(values, per_line=24):
        values = list(values)
        return ",\n".join(
            "  " + ", ".join(str(v) for v in values[i:i + per_line])
            for i in range(0, len(values), per_line))

    lines = [
        "// Generated by csrc/gen_unicode_tables.py from Python %s, unicodedata %s. Do not edit."
        % (sys.version.split()[0], unicodedata.unidata_version),
        "// clang-format off",
        "#define WWM_UNIDATA_VERSION \"%s\"" % unicodedata.unidata_version,
        "const uint16_t kStage1[%d] = {\n%s\n};" % (len(stage1), rows(stage1)),
        "const uint16_t kStage2[%d] = {\n%s\n};" % (len(stage2), rows(stage2)),
        "const CharProps kRecords[%d] = {\n%s\n};" % (
            len(record_list),
            ",\n".join("  {%d, %d, %d, %d}" % r for r in record_list)),
        "const uint32_t kMapData[%d] = {\n%s\n};" % (max(1, len(map_data)), rows(map_data or [0])),
        "",
    ]
    with open(out_path, "w", encoding="ascii") as f:
        f.write("\n".join(lines))


if __name__ == "__main__":
    main(sys.argv[1])
