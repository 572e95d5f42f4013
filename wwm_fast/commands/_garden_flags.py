"""``wwm-fast create``'s Model Garden flags: ``--reference garden`` and the flags of TF Model
Garden's create_pretraining_data.py that Google's script lacks (wwm_fast.compat_garden).

Declares them and turns them into ``create_instances`` keyword arguments. The numeric ones are
range-checked while parsing like every numeric flag (``_flags.int_flag``, bounds in
wwm_fast/_limits.py); how they combine (``--max_ngram_size`` needs ``--reference garden`` and
``--do_whole_word_mask``, at most ``max_seq_length - 3``) is ``compat_garden.check_options``'s,
for the Python API and the CLI alike.
"""

from __future__ import annotations

import argparse

from .._limits import MAX_NGRAM_SIZE, MAX_SEED
from ._flags import add_bool_flag, int_flag, parse_bool


def add_garden_flags(parser) -> None:
    g = parser.add_argument_group(
        "TF Model Garden's flags (official/nlp/data/create_pretraining_data.py)",
        "--mode compat --reference garden: that script's records, bit for bit, same seed.")
    g.add_argument("--reference", choices=["google", "garden"], default="google",
                   help="the script --mode compat reproduces: Google's create_pretraining_data.py "
                        "or TF Model Garden's fork of it")
    g.add_argument("--max_ngram_size", type=int_flag(1, MAX_NGRAM_SIZE),
                   default=argparse.SUPPRESS, metavar="N",
                   help="(--reference garden) mask n-grams of up to N whole words, n drawn with "
                        "weights 1/n; needs --do_whole_word_mask; at most --max_seq_length - 3 "
                        "(default: whole words only)")
    add_bool_flag(g, "use_v2_feature_names", False,
                  "(--reference garden) name the features input_word_ids / input_type_ids "
                  "instead of input_ids / segment_ids")
    # Model Garden's name for --gzip: the same destination, no default of its own
    g.add_argument("--gzip_compress", dest="gzip", nargs="?", const=True, type=parse_bool,
                   default=argparse.SUPPRESS, metavar="{true,false}",
                   help="Model Garden's name for --gzip (default: --gzip's, false)")
    g.add_argument("--nogzip_compress", dest="gzip", action="store_false",
                   default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    g.add_argument("--garden_global_seed", type=int_flag(0, MAX_SEED), default=argparse.SUPPRESS,
                   metavar="SEED",
                   help="(--reference garden) seed of the n-gram size draws, which Model "
                        "Garden's script takes from Python's global random module without seeding "
                        "it (so its own output varies with --max_ngram_size >= 2); ours equals "
                        "the script's after random.seed(SEED) (default: --random_seed)")


def garden_kwargs(args) -> dict:
    return dict(reference=args.reference, max_ngram_size=getattr(args, "max_ngram_size", None),
                use_v2_feature_names=args.use_v2_feature_names,
                garden_global_seed=getattr(args, "garden_global_seed", None))
