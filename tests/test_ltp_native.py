"""The native LTP legacy segmenter (wwm_fast/segmentation/ltp_native.py, csrc/ltp_cws.*) against
the reference, ltp-extension's ``CWSModel.batch_predict`` run on the same model file.

* exact words: ``ltp_words`` == ``batch_predict`` (LTP's strings, whitespace glued on) and
  ``segment_batch`` == the spans the ltp-extension segmenter builds from those strings, on
  People's Daily, its gold segmentation (many spaces) and the reviews -- a sample of every 20th
  line here, every line under ``--runslow`` -- with models trained by ``train_ltp_segmenter``
  with different settings, on adversarial lines, on every code point alone and between two
  Chinese characters, and on random models (random features, tied and NaN weights, repeated
  keys, several records) written as LTP Avro files;
* batch == loop, 1 thread == 2 == 3 == 8 threads;
* model files it cannot read (truncated, damaged, POS, JSON, another schema, bad indices) raise
  ValueError naming the file (random bytes and arrays: tests/test_fuzz_native.py).
"""

from __future__ import annotations

import json
import random
import shutil
import zlib
from pathlib import Path

import numpy as np
import pytest

from conftest import PEOPLE_DAILY, PEOPLE_DAILY_SEG, REVIEWS, _read_lines, require_shared_data
from native_inputs import avro_long, avro_string, cws_datum
from segmentation_helpers import gold_sentences, small_ltp_model
from wwm_fast import _ltp_cws
from wwm_fast.segmentation import get_segmenter
from wwm_fast.segmentation._spans import spans_from_pieces
from wwm_fast.segmentation.ltp_native import LTPNativeSegmenter, load_ltp_model

# -- helpers ------------------------------------------------------------------------------------
_REFS: dict = {}


def reference(model_file):
    """ltp-extension's model for a file (loaded once)."""
    pytest.importorskip("ltp_extension")
    from ltp_extension.perceptron import CWSModel

    key = str(model_file)
    if key not in _REFS:
        _REFS[key] = CWSModel.load(key)
    return _REFS[key]


def assert_same_as_ltp(model_file, lines, chunk=20000):
    """Native words == ltp-extension's, as strings and as spans, on every line."""
    ref = reference(model_file)
    seg = LTPNativeSegmenter(str(model_file))
    for a in range(0, len(lines), chunk):
        part = lines[a:a + chunk]
        want = ref.batch_predict(part, parallelism=False)
        got = seg.ltp_words(part)
        if got != want:
            bad = next(i for i in range(len(part)) if got[i] != want[i])
            raise AssertionError(f"line {a + bad}: {part[bad]!r}\nltp:    {want[bad]}\n"
                                 f"native: {got[bad]}")
        spans = seg.segment_batch(part)
        ref_spans, n_bad = spans_from_pieces(part, want)
        assert n_bad == 0
        for x, y in zip(spans, ref_spans):
            assert x.dtype == y.dtype and np.array_equal(x, y)


CWS_SCHEMA = ('{"type":"record","name":"cws","fields":[{"name":"definition","type":{"type":'
              '"record","name":"definition","fields":[]}},{"name":"features","type":{"type":'
              '"map","values":"long"},"default":{}},{"name":"parameters","type":{"type":'
              '"array","items":"double"},"default":[]}]}')
SYNC = bytes(range(16))


def avro_file(blocks, schema=CWS_SCHEMA, codec="deflate") -> bytes:
    """An Avro object container; ``blocks`` is a list of lists of datums."""
    out = bytearray(b"Obj\x01")
    out += avro_long(2) + avro_string("avro.schema") + avro_string(schema)
    out += avro_string("avro.codec") + avro_string(codec)
    out += avro_long(0) + SYNC
    for datums in blocks:
        data = b"".join(datums)
        if codec == "deflate":
            c = zlib.compressobj(6, zlib.DEFLATED, -15)
            data = c.compress(data) + c.flush()
        out += avro_long(len(datums)) + avro_long(len(data)) + data + SYNC
    return bytes(out)


def read_lines(path):
    require_shared_data()
    return _read_lines(path)


# -- models -------------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def models(tmp_path_factory):
    """Models trained by train_ltp_segmenter with different settings (a few seconds each)."""
    pytest.importorskip("ltp_extension")
    from wwm_fast.segmentation import train_ltp_segmenter

    gold = gold_sentences()
    folder = tmp_path_factory.mktemp("ltp_models")
    out = {"pd3k_e2_compressed": small_ltp_model()}
    settings = {
        "pd4k_e3_uncompressed": (gold[20000:24000], dict(epoch=3, compress=False)),
        "pd2k_e1_2threads_ratio05": (gold[30000:32000], dict(epoch=1, num_threads=2, ratio=0.5)),
    }
    for name, (lines, kw) in settings.items():
        train = folder / f"{name}.txt"
        train.write_text("\n".join(lines) + "\n", encoding="utf-8")
        model = folder / f"{name}.bin"
        train_ltp_segmenter(str(train), str(model), **kw)
        out[name] = str(model)
    return out


MODEL_NAMES = ["pd3k_e2_compressed", "pd4k_e3_uncompressed", "pd2k_e1_2threads_ratio05"]


# -- exact words on the corpora -----------------------------------------------------------------
@pytest.mark.parametrize("name", MODEL_NAMES)
@pytest.mark.parametrize("corpus", [PEOPLE_DAILY, PEOPLE_DAILY_SEG, REVIEWS],
                         ids=["people_daily", "people_daily_seg", "reviews"])
def test_corpus_sample_equals_ltp(models, name, corpus):
    lines = read_lines(corpus)[::20]
    assert_same_as_ltp(models[name], lines)


@pytest.mark.slow
@pytest.mark.parametrize("name", MODEL_NAMES)
@pytest.mark.parametrize("corpus", [PEOPLE_DAILY, PEOPLE_DAILY_SEG, REVIEWS],
                         ids=["people_daily", "people_daily_seg", "reviews"])
def test_whole_corpus_equals_ltp(models, name, corpus):
    assert_same_as_ltp(models[name], read_lines(corpus))


# -- adversarial lines --------------------------------------------------------------------------
ADVERSARIAL = [
    "",                                    # 0: empty
    " ", "   ", "\t\t", "\u3000\u3000", "\xa0", " \u2028 \u2029 ",  # 1-6: whitespace only
    "\x1c\x1d\x1e\x1f", "a\x1cb", "中\x1f国",  # 7-9: str.isspace but not LTP whitespace
    "  他叫汤姆去拿外衣。  ", "他叫 汤姆去拿外衣。", "中 国 人 民", " 中国  人民 ",  # 10-13
    "Hello world, this is LTP.", "ABCabc xyz", "e-mail: someone@example.com",  # 14-16 Latin
    "1998年12月31日", "3.1415926", "１９９８年", "ＡＢＣ公司", "第２９届", "１２３４５６７８９０",
    "０", "9", "12", "x",  # 17-26 digits, full width
    "😀", "😀中国𠀀😀", "👨‍👩‍👧‍👦家庭", "👍🏽好", "中国🇨🇳人民",  # 27-31 emoji, ZWJ, flags
    "\u0378\u0379", "\U000E0000\U0010FFFF", "\uFFFE\uFFFF", "中\U000F0000国", "\uE000\uF8FF",
    "\U0002A6DF\U0002A700\U0002B820\U0002CEAF\U0002F800",  # 32-37 unassigned, private use, ext
    "\x00", "\x00\x00", "\x00中国", "中\x00国", "中国\x00", "\x00\x00中国\x00人民",
    "中\x00\x00国", "中\x00中", "\x01\x02\x7f\x85\x9f", "a\rb", "\r", "中\x0b国\x0c",  # 38-49
    "こんにちは世界", "カタカナとひらがな", "ｶﾀｶﾅ", "한국어 텍스트", "Русский текст",
    "مرحبا بالعالم", "ภาษาไทย", "e\u0301\u0301", "中文English混合123测试",  # 50-58 scripts
    "哈哈哈哈哈", "ABABAB", "中国中国中国", "的的的", "一二一二一",  # 59-63 ch[-2] == ch[0]
    "。，、；：？！", "“中国”《人民日报》", "(中国)[人民]{万岁}",  # 64-66 punctuation
    "中" * 5000, "中国人民" * 3000, ("他叫汤姆去拿外衣。 " * 2000),  # 67-69 long lines
    " ".join("中国人民站起来了"), "\t".join("中华人民共和国"),  # 70-71
]


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_adversarial_lines_equal_ltp(models, name):
    assert_same_as_ltp(models[name], ADVERSARIAL)


def test_random_lines_equal_ltp(models):
    """Random lines from the model's own characters, whitespace, and any code point."""
    rng = random.Random(20240501)
    gold = "".join(gold_sentences()[:2000])
    common = sorted(set(gold))
    spaces = [" ", " ", "\t", "\u3000", "\xa0", "\u2028", "\x1c", "\x00"]
    lines = []
    for _ in range(3000):
        n = rng.choice([1, 2, 3, 5, 10, 40, 200])
        out = []
        for _ in range(n):
            r = rng.random()
            if r < 0.75:
                out.append(rng.choice(common))
            elif r < 0.9:
                out.append(rng.choice(spaces))
            else:
                cp = rng.randrange(0x110000)
                out.append(chr(cp) if not 0xD800 <= cp <= 0xDFFF else "字")
        lines.append("".join(out))
    for name in MODEL_NAMES:
        assert_same_as_ltp(models[name], lines)


_TYPE_EDGES = [0x3040, 0x3096, 0x30A0, 0x30FA, 0x30FB, 0x30FC, 0x30FF, 0x3400, 0x4DBF, 0x4E00,
               0x9FFF, 0xF900, 0xFAFF, 0xFF10, 0xFF19, 0xFF21, 0xFF3A, 0xFF41, 0xFF5A, 0xFF66,
               0xFF9F, 0x20000, 0x2A6DF, 0x2A700, 0x2B73F, 0x2B740, 0x2B81F, 0x2B820, 0x2CEAF,
               0x2F800, 0x2FA1F]


@pytest.mark.parametrize("planes", ["bmp", pytest.param("all", marks=pytest.mark.slow)])
def test_every_code_point_equals_ltp(models, planes):
    """Each code point alone (is it whitespace to LTP? to str.isspace?) and between two Chinese
    characters (its character type, its features): every BMP code point, and beyond the BMP
    the edges of LTP's character classes and every 61st (every one under --runslow)."""
    if planes == "all":
        cps = [c for c in range(0x110000) if not 0xD800 <= c <= 0xDFFF]
    else:
        extra = {c + d for c in _TYPE_EDGES for d in (-1, 0, 1)} | set(range(0x10000, 0x110000, 61))
        cps = sorted({c for c in range(0x10000) if not 0xD800 <= c <= 0xDFFF}
                     | {c for c in extra if c >= 0x10000} | {0x10FFFF})
    alone = [chr(c) for c in cps]
    between = ["中" + chr(c) + "国" for c in cps]
    model = models["pd3k_e2_compressed"]
    assert_same_as_ltp(model, alone, chunk=len(alone))
    assert_same_as_ltp(model, between, chunk=len(between))


def test_worst_case_long_line(models):
    """One line of 1,000,000 characters (and one of a million spaces)."""
    rng = random.Random(7)
    common = sorted(set("".join(gold_sentences()[:500])))
    line = "".join(rng.choice(common) for _ in range(1_000_000))
    assert_same_as_ltp(models["pd3k_e2_compressed"], [line, " " * 1_000_000])


# -- batch, loop, threads -----------------------------------------------------------------------
def test_batch_equals_loop_and_threads(models):
    model = models["pd4k_e3_uncompressed"]
    lines = read_lines(PEOPLE_DAILY)[:3000:3] + ADVERSARIAL + read_lines(REVIEWS)[:3000:3]
    one = LTPNativeSegmenter(model, num_threads=1)
    batch = one.segment_batch(lines)
    loop = [one.segment_batch([x]) for x in lines]
    assert np.array_equal(batch.starts, np.concatenate([w.starts for w in loop]))
    assert np.array_equal(batch.ends, np.concatenate([w.ends for w in loop]))
    assert np.array_equal(np.diff(batch.row_splits), [len(w.starts) for w in loop])
    assert one.ltp_words(lines) == [one.ltp_words([x])[0] for x in lines]
    for threads in (2, 3, 8, -1):
        other = LTPNativeSegmenter(model, num_threads=threads)
        for a, b in zip(batch, other.segment_batch(lines)):
            assert np.array_equal(a, b)
        assert other.ltp_words(lines) == one.ltp_words(lines)
    # more threads than lines, and tiny batches
    eight = LTPNativeSegmenter(model, num_threads=8)
    for k in (0, 1, 2, 5):
        for a, b in zip(one.segment_batch(lines[:k]), eight.segment_batch(lines[:k])):
            assert np.array_equal(a, b)


def test_kernel_byte_and_char_splits_agree(models):
    """The kernel's two ways of giving row offsets (bytes, code points) give the same words."""
    m = load_ltp_model(models["pd3k_e2_compressed"])
    lines = ADVERSARIAL + gold_sentences()[:200]
    data = "".join(lines).encode("utf-8")
    cps = np.zeros(len(lines) + 1, np.int64)
    np.cumsum([len(x) for x in lines], out=cps[1:])
    nbytes = np.zeros(len(lines) + 1, np.int64)
    np.cumsum([len(x.encode("utf-8")) for x in lines], out=nbytes[1:])
    for ltp_words in (False, True):
        for threads in (1, 2):
            a = m.segment(data, cps, True, ltp_words, threads)
            b = m.segment(data, nbytes, False, ltp_words, threads)
            for x, y in zip(a, b):
                assert np.array_equal(x, y)


def test_segment_utf8_equals_segment_batch(models):
    """``segment_utf8`` (UTF-8 rows and byte or code point offsets: what ``--convert`` hands
    over) gives ``segment_batch``'s spans; bad offsets and bad UTF-8 are ValueErrors."""
    seg = LTPNativeSegmenter(models["pd3k_e2_compressed"])
    lines = ADVERSARIAL + gold_sentences()[:200] + ["", "  ", "\u3000甲 乙\t"]
    want = seg.segment_batch(lines)
    data = "".join(lines).encode("utf-8")
    nbytes = np.zeros(len(lines) + 1, np.int64)
    np.cumsum([len(x.encode("utf-8")) for x in lines], out=nbytes[1:])
    cps = np.zeros(len(lines) + 1, np.int64)
    np.cumsum([len(x) for x in lines], out=cps[1:])
    for got in (seg.segment_utf8(data, nbytes), seg.segment_utf8(data, cps, splits_in_chars=True),
                seg.segment_utf8(data, nbytes.astype(np.int32).tolist())):
        for x, y in zip(got, want):
            assert np.array_equal(x, y)
    assert len(seg.segment_utf8(b"", np.zeros(1, np.int64)).row_splits) == 1
    with pytest.raises(ValueError, match="end at the text size"):
        seg.segment_utf8(data, nbytes[:-1])
    with pytest.raises(ValueError, match="non-decreasing"):
        seg.segment_utf8(data, np.array([0, 6, 3, len(data)], np.int64))
    with pytest.raises(ValueError, match="invalid UTF-8"):
        seg.segment_utf8("甲乙".encode("utf-8")[:4], np.array([0, 4], np.int64))
    with pytest.raises(ValueError, match="end at the text size"):  # no rows, but text
        seg.segment_utf8(data, np.zeros(1, np.int64))
    with pytest.raises(ValueError, match="len\\(rows\\) \\+ 1 offsets"):
        seg.segment_utf8(data, np.zeros(0, np.int64))


# -- the segmenter ------------------------------------------------------------------------------
def test_spec_fingerprint_and_registry(models, tmp_path):
    from wwm_fast.segmentation.base import sha256_file
    from wwm_fast.segmentation.ltp import LTPLegacySegmenter

    model = models["pd3k_e2_compressed"]
    digest = sha256_file(model)[:12]
    seg = get_segmenter(f"ltp:{model}")
    assert isinstance(seg, LTPNativeSegmenter) and seg.kind == "ltp-legacy"
    assert seg.spec == f"ltp-legacy:{model}#{digest}"
    assert isinstance(get_segmenter(seg.spec), LTPNativeSegmenter)
    rust = get_segmenter(f"ltp-rust:{model}")
    assert isinstance(rust, LTPLegacySegmenter) and rust.spec == f"ltp-rust:{model}#{digest}"
    assert isinstance(get_segmenter(rust.spec), LTPLegacySegmenter)
    lines = gold_sentences()[:50] + ADVERSARIAL[:20]
    for a, b in zip(seg.segment_batch(lines), rust.segment_batch(lines)):
        assert np.array_equal(a, b)
    assert seg.words(lines) == rust.words(lines)
    with pytest.raises(ValueError, match="has changed since it was recorded"):
        get_segmenter(f"ltp:{model}#000000000000")
    # the file changes between creation and first use
    copy = tmp_path / "m.bin"
    shutil.copy(model, copy)
    lazy = get_segmenter(f"ltp:{copy}")
    copy.write_bytes(Path(models["pd4k_e3_uncompressed"]).read_bytes())
    with pytest.raises(ValueError, match=r"m\.bin.*has changed since this segmenter was created"):
        lazy.segment("中国")
    # LTP's hub folder layout
    folder = tmp_path / "legacy"
    folder.mkdir()
    shutil.copy(model, folder / "cws_model.bin")
    (folder / "config.json").write_text(json.dumps({"nerual": False, "tasks": {
        "cws": "cws_model.bin", "pos": "pos_model.bin"}}))
    hub = get_segmenter(f"ltp:{folder}")
    assert hub.model_file == str(folder / "cws_model.bin")
    assert hub.segment("他叫汤姆去拿外衣。") == seg.segment("他叫汤姆去拿外衣。")


def test_bad_lines(models):
    seg = LTPNativeSegmenter(models["pd3k_e2_compressed"])
    with pytest.raises(ValueError, match=r"corpus\.txt: line 12: character 1 .*lone surrogate"):
        seg.segment_batch(["中国", "a\ud800b"], source="corpus.txt", line_offset=10)
    with pytest.raises(ValueError, match=r"lines\[0\]"):
        seg.ltp_words(["\udfff"])
    with pytest.raises(TypeError, match="lines must all be str"):
        seg.segment_batch(["中国", b"x"])
    with pytest.raises(TypeError, match="not a single str"):
        seg.segment_batch("中国")
    w = seg.segment_batch([])
    assert len(w.starts) == 0 and list(w.row_splits) == [0]


def test_kernel_input_errors(models):
    m = load_ltp_model(models["pd3k_e2_compressed"])
    data = "中国人民".encode("utf-8")
    ok = np.array([0, 12], np.int64)
    assert m.segment(data, ok, False, False, 1)[0].tolist() == m.segment(
        data, np.array([0, 4], np.int64), True, False, 1)[0].tolist()
    for splits, in_chars, msg in [
            ([1, 12], False, "start at 0"), ([0, 11], False, "end at the text size"),
            ([0, 6, 3, 12], False, "non-decreasing"), ([0, 5], True, "fewer"),
            ([0, 3], True, "more"), ([0, 4, 12], False, r"row 0: invalid UTF-8 at byte 3")]:
        with pytest.raises(ValueError, match=msg):
            m.segment(data, np.array(splits, np.int64), in_chars, False, 1)
    with pytest.raises(ValueError, match=r"row 1: invalid UTF-8 at byte 0 of the row"):
        m.segment(b"ab\xe4\xb8", np.array([0, 2, 4], np.int64), False, False, 2)
    # the package's thread policy (csrc/parallel.h): <= 0 = every core, capped at MAX_THREADS
    assert _ltp_cws.MAX_THREADS == 256
    one = m.segment(data, ok, False, False, 1)
    for threads in (0, -1, 10**6):
        for x, y in zip(m.segment(data, ok, False, False, threads), one):
            np.testing.assert_array_equal(x, y)
    with pytest.raises(TypeError):
        m.segment(data, ok.astype(np.int32), False, False, 1)  # no silent conversion


# -- model files it cannot read -----------------------------------------------------------------
def test_bad_model_files(models, tmp_path):
    model = models["pd3k_e2_compressed"]
    data = Path(model).read_bytes()

    def refused(name, blob, match):
        path = tmp_path / name
        path.write_bytes(blob)
        with pytest.raises(ValueError, match=match):
            LTPNativeSegmenter(str(path)).load()

    refused("empty.bin", b"", r"empty\.bin.*not a valid LTP legacy model.*empty file")
    refused("garbage.bin", b"not a model\n" * 50, r"garbage\.bin.*wrong magic")
    for cut in (5, 100, 300, len(data) // 2, len(data) - 17, len(data) - 1):
        refused(f"cut{cut}.bin", data[:cut], rf"cut{cut}\.bin.*not a valid LTP legacy model")
    # LTP 3's C++ model files, and anything else, start differently
    refused("ltp3.model", b"\x00\x00\x00\x01segmentor" + data[20:], r"ltp3\.model.*wrong magic")
    # damaged inside the deflate stream: refused, or (deflate has no checksum) read as the
    # same bytes ltp-extension would read -- never a crash
    rng = random.Random(3)
    for k in range(20):
        flipped = bytearray(data)
        at = rng.randrange(400, len(data) - 20)
        flipped[at] ^= 1 << rng.randrange(8)
        path = tmp_path / f"flip{k}.bin"
        path.write_bytes(bytes(flipped))
        try:
            LTPNativeSegmenter(str(path)).segment("他叫汤姆去拿外衣。")
        except ValueError as e:
            assert f"flip{k}.bin" in str(e)


def test_other_task_and_format_models(models, tmp_path):
    pytest.importorskip("ltp_extension")
    from ltp_extension.perceptron import CWSModel, POSTrainer

    train = tmp_path / "pos.txt"
    train.write_text("中国/ns 人民/n 站/v 起来/v 了/u\n他/r 叫/v 汤姆/nh\n" * 20, encoding="utf-8")
    trainer = POSTrainer(["ns", "n", "v", "u", "r", "nh"])
    trainer.epoch = 1
    trainer.load_train_data(str(train))
    trainer.load_eval_data(str(train))
    from wwm_fast.segmentation.train import _quiet_stdout

    with _quiet_stdout(False):
        pos = trainer.train()
    pos.save(str(tmp_path / "pos_model.bin"))
    with pytest.raises(ValueError, match=r"pos_model\.bin.* is a POS model, not a word segm"):
        get_segmenter(f"ltp:{tmp_path / 'pos_model.bin'}")
    # a JSON model (ltp-extension saves and loads *.json as JSON)
    CWSModel.load(models["pd3k_e2_compressed"]).save(str(tmp_path / "cws.json"))
    with pytest.raises(ValueError, match=r"cws\.json.* is a JSON model.*'ltp-rust:"):
        get_segmenter(f"ltp:{tmp_path / 'cws.json'}")
    # an NER schema, a schema of another version, another codec
    feats, params = [("2中", 4)], [0.5] * 20
    for name, blob, match in [
            ("ner.bin", avro_file([[cws_datum(feats, params)]], CWS_SCHEMA.replace(
                '"name":"cws"', '"name":"ner"')), "is a NER model"),
            ("v2.bin", avro_file([[cws_datum(feats, params)]], CWS_SCHEMA.replace(
                '"fields":[]', '"fields":[{"name":"x","type":"int"}]')),
             r"v2\.bin.* schema this segmenter does not know \(another LTP version\?\)"),
            ("snappy.bin", avro_file([[cws_datum(feats, params)]], codec="snappy"),
             r"snappy\.bin.*codec 'snappy'"),
            ("no_record.bin", avro_file([]), r"no_record\.bin.*no model record"),
            ("few_params.bin", avro_file([[cws_datum(feats, [1.0] * 15)]]),
             r"few_params\.bin.*15 parameters, fewer than LTP's 16 transition weights"),
            ("bad_index.bin", avro_file([[cws_datum([("2中", 4)], [1.0] * 19)]]),
             r"bad_index\.bin.*feature '2\\xe4\\xb8\\xad' has index 4, outside"),
            ("neg_index.bin", avro_file([[cws_datum([("5中国", -1)], [1.0] * 20)]]),
             r"neg_index\.bin.*has index -1"),
            ("bad_utf8.bin", avro_file([[cws_datum([(b"2\xff", 4)], [1.0] * 20)]]),
             r"bad_utf8\.bin.*feature '2\\xff' is not valid UTF-8"),
            ("bad_first_record.bin", avro_file([[b"\x07junk"], [cws_datum(feats, params)]]),
             r"bad_first_record\.bin.*malformed LTP model record"),
            ("trailing.bin", avro_file([[cws_datum(feats, params) + b"\x00"]]),
             r"trailing\.bin.*1 bytes left over"),
            ("short_record.bin", avro_file([[cws_datum(feats, params)[:-9]]]),
             r"short_record\.bin.*a block of the parameters array with 20 items in 152 bytes")]:
        path = tmp_path / name
        path.write_bytes(blob)
        with pytest.raises(ValueError, match=match):
            get_segmenter(f"ltp:{path}").load()


# -- random models, differential against ltp-extension ------------------------------------------
ALPHABET = list("中国人民的一是了大") + list("aZ09") + ["１", "Ａ", "あ", "ア", "😀", "\x00", "\x1c"]


def random_model(rng: random.Random, tmp_path, k: int):
    """A random LTP model file: random features over ALPHABET (some repeated with other
    indices), integer weights (many exact ties) or real ones with NaN/inf, 1-3 records."""
    n_index = rng.randrange(1, 40)
    features = []
    for _ in range(rng.randrange(0, 120)):
        t = rng.choice("012345678cd")
        if t in "01234":
            key = t + rng.choice(ALPHABET)
        elif t in "5678":
            key = t + rng.choice(ALPHABET) + rng.choice(ALPHABET)
        elif t == "c":
            key = "c"
        else:
            key = f"d{rng.randrange(1, 7)}{rng.randrange(1, 7)}"
        features.append((key, rng.randrange(0, n_index + 4)))
    n_params = 4 * (n_index + 4)
    style = rng.randrange(3)
    if style == 0:
        params = [float(rng.randrange(-2, 3)) for _ in range(n_params)]
    elif style == 1:
        params = [rng.gauss(0, 10) for _ in range(n_params)]
    else:
        params = [rng.choice([rng.gauss(0, 3), float("nan"), float("inf"), -float("inf"), 0.0,
                              -0.0, 1e308, -1e308]) for _ in range(n_params)]
    datums = [cws_datum(features, params, map_blocks=rng.randrange(1, 4))]
    for _ in range(rng.randrange(3)):  # LTP reads the last record of the file
        datums.insert(0, cws_datum(features[: len(features) // 2], params[:16] + [9.0] * 8))
    blocks = [datums] if rng.random() < 0.5 else [[d] for d in datums]
    path = tmp_path / f"random{k}.bin"
    path.write_bytes(avro_file(blocks, codec=rng.choice(["deflate", "null"])))
    return str(path)


def random_text(rng: random.Random, n_lines: int):
    pool = ALPHABET + [" ", "\t", "\u3000", "字"]
    return ["".join(rng.choice(pool) for _ in range(rng.choice([0, 1, 2, 3, 4, 8, 30])))
            for _ in range(n_lines)]


def test_random_models_equal_ltp(tmp_path):
    pytest.importorskip("ltp_extension")
    rng = random.Random(12345)
    for k in range(150):
        path = random_model(rng, tmp_path, k)
        assert_same_as_ltp(path, random_text(rng, 60))


# -- fuzzing ----------------------------------------------------------------------------------
# The crash fuzz targets of the kernel (random bytes, records and arrays) are in
# tests/test_fuzz_native.py with the other native entry points (they need no ltp-extension and
# run under tools/sanitize.sh); this one compares words with ltp-extension on random text.
hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402


@pytest.fixture(scope="module")
def small_segmenters():
    return {t: LTPNativeSegmenter(small_ltp_model(), num_threads=t) for t in (1, 2, 3)}


@settings(max_examples=300, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=st.lists(st.text(max_size=40), max_size=8), threads=st.integers(1, 3))
def test_fuzz_text_equals_ltp(small_segmenters, text, threads):
    text = [t.encode("utf-8", "replace").decode("utf-8") for t in text]  # no lone surrogates
    want = reference(small_ltp_model()).batch_predict(text, parallelism=False)
    assert small_segmenters[threads].ltp_words(text) == want
