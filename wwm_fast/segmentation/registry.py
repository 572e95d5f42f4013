"""Segmenter specs: parsing them, building a segmenter from one (``get_segmenter``), and the one
per-process segmenter cache (``cached_segmenter``) that every worker uses.

Spec strings (the ``--segmenter`` flag):

========================  ======================================================================
``ltp:PATH``              LTP legacy (averaged perceptron), native (``ltp_native``): a CWS
                          model file, or a folder in LTP's hub layout (``config.json`` naming
                          the cws file, as ``LTP/legacy`` is distributed); ``ltp-extension``'s
                          words. ``ltp-legacy:PATH`` is the same.
``ltp-rust:PATH``         the same model run by ``ltp-extension`` itself (Rust; extra
                          ``wwm-fast[ltp]``), the reference the native kernel is tested against.
``ltp-neural:NAME|PATH``  neural LTP (``ltp`` + torch, extra ``wwm-fast[ltp-neural]``):
                          ``LTP/tiny`` etc. from the local Hugging Face cache, or a local folder.
``jieba``                 jieba with its bundled dictionary, HMM on (jieba's default);
                          ``jieba:nohmm`` turns the HMM off.
``pre:DELIM``             pre-segmented text, words separated by ``DELIM`` (``pre`` alone: one
                          space).
``SPEC|convert=t2s``      ``SPEC`` run on an OpenCC-converted copy of each line, words mapped
                          back to the original (``convert.ConvertedSegmenter``; extra
                          ``wwm-fast[opencc]``; ``wwm-fast segment --convert``).
========================  ======================================================================

``Segmenter.spec`` is the canonical form recorded in segmentation caches, with a fingerprint of
the model (``ltp-legacy:/abs/cws_model.bin#<12 hex of sha256>``); ``get_segmenter(seg.spec)``
rebuilds the same segmenter and refuses a model file whose content changed.

Owns the table of kinds (``_KINDS``: a new segmenter is one builder function and one line there)
and the one wrapper spec, ``INNER|convert=ARG`` (``_converted``: the inner segmenter is built
from its own spec, then wrapped). It must not segment anything itself, and it imports each
segmenter module only when its kind is asked for (optional packages stay optional); the
segmenter modules (``convert`` included) never import this one.
"""

from __future__ import annotations

from typing import Callable, Dict, NamedTuple, Optional, Tuple

from .._threads import check_num_threads
from .base import Segmenter

__all__ = ["get_segmenter", "cached_segmenter", "parse_spec", "Spec", "spec_of"]


class Spec(NamedTuple):
    """A spec string taken apart: ``kind[:arg]`` (``has_arg``: the ``:`` was there)."""

    kind: str
    arg: str
    has_arg: bool


def parse_spec(spec: str) -> Spec:
    """``"ltp:/m.bin"`` -> Spec("ltp", "/m.bin", True); the kind is lower-cased and stripped."""
    if not isinstance(spec, str):
        raise TypeError(f"segmenter spec must be a str, got {type(spec).__name__}")
    kind, sep, arg = spec.partition(":")
    return Spec(kind.strip().lower(), arg, bool(sep))


def _split_fingerprint(arg: str) -> Tuple[str, Optional[str]]:
    """``PATH#0123456789ab`` -> (PATH, "0123456789ab"); anything else -> (arg, None)."""
    head, sep, tail = arg.rpartition("#")
    if sep and len(tail) == 12 and all(c in "0123456789abcdef" for c in tail):
        return head, tail
    return arg, None


# -- the kinds ---------------------------------------------------------------------------------------


def _ltp_model_arg(spec: str, s: Spec) -> Tuple[str, Optional[str]]:
    if not s.arg.strip():
        raise ValueError(
            f"segmenter {spec!r} needs a model path: '{s.kind}:/path/to/cws_model.bin' or "
            f"'{s.kind}:/path/to/LTP-legacy-folder' (train one with `wwm-fast train-segmenter`)")
    return _split_fingerprint(s.arg.strip())


def _ltp_legacy(spec: str, s: Spec, num_threads: int) -> Segmenter:
    from .ltp_native import LTPNativeSegmenter
    path, fingerprint = _ltp_model_arg(spec, s)
    return LTPNativeSegmenter(path, num_threads=num_threads, fingerprint=fingerprint)


def _ltp_rust(spec: str, s: Spec, num_threads: int) -> Segmenter:
    from .ltp import LTPLegacySegmenter
    path, fingerprint = _ltp_model_arg(spec, s)
    return LTPLegacySegmenter(path, num_threads=num_threads, fingerprint=fingerprint)


def _ltp_neural(spec: str, s: Spec, num_threads: int) -> Segmenter:
    if not s.arg.strip():
        raise ValueError(f"segmenter {spec!r} needs a model: 'ltp-neural:LTP/tiny' or "
                         f"'ltp-neural:/path/to/model-folder'")
    from .ltp import LTPNeuralSegmenter
    name, fingerprint = _split_fingerprint(s.arg.strip())
    return LTPNeuralSegmenter(name, num_threads=num_threads, fingerprint=fingerprint)


def _jieba(spec: str, s: Spec, num_threads: int) -> Segmenter:
    from .jieba import JiebaSegmenter
    return JiebaSegmenter.from_arg(s.arg, num_threads=num_threads)


def _pre(spec: str, s: Spec, num_threads: int) -> Segmenter:
    from .pre import PreSegmenter
    return PreSegmenter(s.arg if s.has_arg and s.arg != "" else " ", num_threads=num_threads)


# kind -> (builder(spec, parsed, num_threads), the form shown in the unknown-kind error or None)
_KINDS: Dict[str, Tuple[Callable[[str, Spec, int], Segmenter], Optional[str]]] = {
    "ltp": (_ltp_legacy, "'ltp:PATH'"),
    "ltp-legacy": (_ltp_legacy, None),
    "ltp-rust": (_ltp_rust, "'ltp-rust:PATH'"),
    "ltp-neural": (_ltp_neural, "'ltp-neural:NAME'"),
    "jieba": (_jieba, "'jieba'"),
    "pre": (_pre, "'pre:DELIM'"),
}


def _converted(spec: str, num_threads: int) -> Optional[Segmenter]:
    """The segmenter of an ``INNER|convert=ARG`` spec; None for a spec without that part.

    ``ARG`` is an OpenCC config as ``ConvertedSegmenter`` records it (``opencc:t2s@1.1.9``) or
    as a user writes it (``t2s``). The last ``|convert=`` counts, so a ``pre:`` delimiter may
    contain ``|``; ``ConvertedSegmenter`` refuses an inner spec that converts again.
    """
    if "|" not in spec:  # convert.py is loaded only for a spec that may wrap another
        return None
    from .convert import SPEC_SEP, ConvertedSegmenter, get_converter, parse_convert

    inner, sep, arg = spec.rpartition(SPEC_SEP)
    if not sep:
        return None
    config, version = parse_convert(arg)
    return ConvertedSegmenter(get_segmenter(inner, num_threads=num_threads),
                              get_converter(config, version))


def get_segmenter(spec: str, num_threads: int = 1) -> Segmenter:
    """A segmenter from a spec string (see the module docstring for the forms).

    Parameters
    ----------
    spec : str
        ``"ltp:PATH"``, ``"ltp-neural:LTP/tiny"``, ``"jieba"``, ``"pre: "``,
        ``"jieba|convert=t2s"``, or a canonical ``Segmenter.spec``.
    num_threads : int, default 1
        Threads inside the segmenter: LTP legacy splits a batch over threads (``ltp-rust``: its
        Rust thread pool, sized by the first parallel call in a process, see README); -1 = all
        cores.

    Raises ValueError naming the problem for an unknown kind, a missing or corrupt model file,
    or a segmenter package that is not installed (with the pip extra to install); for a
    ``|convert=`` spec also an unknown OpenCC config or another installed OpenCC version.
    """
    s = parse_spec(spec)
    num_threads = check_num_threads(num_threads)
    converted = _converted(spec, num_threads)
    if converted is not None:
        return converted
    entry = _KINDS.get(s.kind)
    if entry is None:
        forms = ", ".join(form for _, form in _KINDS.values() if form)
        raise ValueError(f"unknown segmenter {spec!r}: expected one of {forms}")
    return entry[0](spec, s, num_threads)


def spec_of(segmenter) -> Optional[str]:
    """The spec string of ``segmenter`` (a spec string, a ``Segmenter``, or None)."""
    if segmenter is None:
        return None
    if isinstance(segmenter, str):
        return segmenter
    spec = getattr(segmenter, "spec", None)
    if not isinstance(spec, str):
        raise TypeError(f"segmenter must be a spec string (e.g. 'jieba', 'ltp:/path') or a "
                        f"wwm_fast Segmenter, got {type(segmenter).__name__}")
    return spec


# -- the per-process cache ---------------------------------------------------------------------------

_CACHED: Dict[Tuple[str, int], Segmenter] = {}


def cached_segmenter(spec: str, num_threads: int = 1) -> Segmenter:
    """This process's segmenter for ``(spec, num_threads)``, built on first use.

    Workers (create's shards, ``segment_files``' chunks, Beam's DoFn) build their segmenter once
    and reuse it for every task. One segmenter is kept at a time: asking for another spec drops
    the previous one (a model can take hundreds of MB).
    """
    key = (spec, check_num_threads(num_threads))
    seg = _CACHED.get(key)
    if seg is None:
        _CACHED.clear()
        seg = _CACHED[key] = get_segmenter(spec, num_threads=key[1])
    return seg
