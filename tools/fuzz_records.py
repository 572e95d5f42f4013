"""Long structure-aware mutation fuzzing of the Cython TFRecord reader (csrc/FUZZING.md).

    python tools/fuzz_records.py [--inputs 1000000] [--seed 0]
    tools/sanitize.sh --python tools/fuzz_records.py --inputs 1000000    # on the ASan build

Each round mutates a tf.train.Example (bit flips, protobuf tags and varints inserted, ranges cut
or doubled, length fields replaced by values near 2^31, 2^63 and 2^64, splices of two seeds),
frames it with valid CRCs most of the time (so the parser is reached) behind 0-2 valid BERT
records, and feeds it to the three entry points: parse_example (the payload), index_records and
decode_bert_records (the file). A ValueError / IndexError is the expected outcome for bad input;
any other exception fails the run, and a memory error aborts it under the sanitizers. Prints
the inputs tried per entry point, the outcomes and the time.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests"))

import native_inputs as ni  # noqa: E402
from wwm_fast import _records  # noqa: E402

EXPECTED = (ValueError, IndexError)
HUGE = [2**31 - 1, 2**31, 2**32, 2**63 - 1, 2**63, 2**63 + 7, 2**64 - 1, 2**64 - 4, 2**64 - 11,
        2**64 - 1000]
TAGS = [b"\x0a", b"\x12", b"\x1a", b"\x08", b"\x0d", b"\x09", b"\x0b", b"\x0c", b"\x22"]


def seeds() -> list:
    out = [ni.bert_example(seq=s, pred=p) for s, p in ((1, 1), (3, 1), (8, 2), (20, 5))]
    out.append(ni.field(1, ni.int64_feature("a", [2**63, 1, 0]) + ni.float_feature("b", [0.5])))
    out.append(ni.field(1, ni.field(1, ni.field(1, b"k") + ni.field(2, ni.field(1, ni.field(
        1, b"v"))))))
    # an unpacked Int64List and a non-packed float, as other writers produce them
    out.append(ni.field(1, ni.field(1, ni.field(1, b"input_ids") + ni.field(2, ni.field(
        3, b"\x08\x05\x08\x06")))))
    out.append(ni.field(1, ni.field(1, ni.field(1, b"masked_lm_weights") + ni.field(2, ni.field(
        2, b"\x0d\x00\x00\x80\x3f")))))
    return out


def mutate(rng: random.Random, data: bytes, pool: list) -> bytes:
    b = bytearray(data)
    for _ in range(rng.choice((1, 1, 1, 2, 3))):
        op = rng.randrange(8)
        i = rng.randint(0, len(b))
        if op == 0 and b:  # bit flip
            j = rng.randrange(len(b))
            b[j] ^= 1 << rng.randrange(8)
        elif op == 1:  # a tag
            b[i:i] = rng.choice(TAGS)
        elif op == 2:  # a varint, often huge
            v = rng.choice(HUGE) if rng.random() < 0.5 else rng.randrange(300)
            b[i:i] = ni.varint(v)
        elif op == 3:  # cut a range
            del b[i:i + rng.randint(1, 8)]
        elif op == 4:  # double a range
            b[i:i] = b[i:i + rng.randint(1, 16)]
        elif op == 5 and b:  # overwrite the byte after a tag with a huge length
            j = rng.randrange(len(b))
            b[j + 1:j + 2] = ni.varint(rng.choice(HUGE))
        elif op == 6:  # splice another seed
            other = rng.choice(pool)
            k = rng.randint(0, len(other))
            b[i:] = other[k:]
        else:  # random bytes
            b[i:i] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 4)))
    return bytes(b)


def frame_file(rng: random.Random, payload: bytes, good: bytes) -> bytes:
    head = good * rng.randint(0, 2)
    r = rng.random()
    if r < 0.75:
        return head + ni.frame(payload)
    if r < 0.9:  # a length header that lies, with a valid CRC
        lie = rng.choice(HUGE + [max(0, len(payload) + rng.randint(-3, 3))])
        return head + ni.frame(payload, lie)
    data = head + ni.frame(payload)
    cut = rng.randint(0, len(data))
    return data[:cut]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--inputs", type=int, default=1_000_000, help="rounds (each feeds all three)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    rng = random.Random(args.seed)
    pool = seeds()
    good = ni.frame(ni.bert_example(seq=3, pred=1))
    outcomes = {name: {"ok": 0, "error": 0} for name in
                ("parse_example", "index_records", "decode_bert_records")}
    t0 = time.perf_counter()
    for k in range(args.inputs):
        payload = mutate(rng, rng.choice(pool), pool)
        data = frame_file(rng, payload, good)
        calls = (("parse_example", lambda: _records.parse_example(payload)),
                 ("index_records", lambda: _records.index_records(data, "f")),
                 ("decode_bert_records", lambda: _records.decode_bert_records(data, "f")))
        for name, call in calls:
            try:
                call()
                outcomes[name]["ok"] += 1
            except EXPECTED:
                outcomes[name]["error"] += 1
            except Exception as e:  # noqa: BLE001 -- the finding itself
                print(f"FINDING round {k} {name}: {type(e).__name__}: {e}\n"
                      f"payload={payload!r}\ndata={data!r}", file=sys.stderr)
                return 1
        if k and k % 100_000 == 0:
            print(f"{k:,} rounds, {time.perf_counter() - t0:.0f} s", file=sys.stderr, flush=True)
    wall = time.perf_counter() - t0
    for name, o in outcomes.items():
        print(f"{name}: {args.inputs:,} inputs, {o['ok']:,} decoded, {o['error']:,} rejected "
              f"with ValueError/IndexError, 0 other exceptions")
    print(f"{wall:.0f} s, seed {args.seed}, module {_records.__file__}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
