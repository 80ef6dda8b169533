"""Answer-matching metrics: scene classification OA, RSVQA accuracy, LRS-VQA scoring and VRSBench VQA accuracy.

Records are dicts with the model's answer under ``"prediction"`` (or ``"output"``, RSCoVLM's name) and the reference
under ``"ground_truth"`` (or ``"answer"``); grouping keys are named per metric. Answers are compared after
:func:`normalize_answer` (``lower().strip().strip(".")``, RSCoVLM's rule) with one of three matchers:

* ``"exact"`` -- equal strings (default);
* ``"contain"`` -- the reference is a substring of the prediction (RSCoVLM's ``compute_contain_acc``, which it uses
  for AID / UCM scene classification and RSVQA-HR/LR);
* ``"startswith"`` -- RSCoVLM's ``compute_startswith_acc``, which tests ``gt.startswith(pred)`` (sic).

Example:
    >>> recs = [{"prediction": "Forest.", "ground_truth": "forest"}, {"prediction": "river", "ground_truth": "lake"}]
    >>> scene_oa(recs)["OA"]
    0.5
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal

from rszoo.registry import METRICS

__all__ = [
    "LRSVQA_CATEGORIES",
    "LRSVQA_SOURCES",
    "lrs_vqa",
    "normalize_answer",
    "rsvqa",
    "scene_oa",
    "vrsbench_vqa",
]

Match = Literal["exact", "contain", "startswith"]

#: The three LRS-VQA sources (question-id prefixes) and eight categories, in RSCoVLM's order.
LRSVQA_SOURCES: tuple[str, ...] = ("FAIR", "STAR", "GLH")
LRSVQA_CATEGORIES: tuple[str, ...] = (
    "rural or urban",
    "object shape",
    "object status",
    "count",
    "object background",
    "object color",
    "object category",
    "reasoning",
)

_PRED_KEYS = ("prediction", "output")
_GT_KEYS = ("ground_truth", "answer")


def normalize_answer(text: Any) -> str:
    """``str(text).lower().strip().strip(".")`` -- RSCoVLM's normalisation before comparing answers."""
    return str(text).lower().strip().strip(".")


def _get(rec: Any, keys: Sequence[str], i: int, what: str) -> Any:
    if not isinstance(rec, Mapping):
        raise TypeError(f"records[{i}]: expected a dict, got {type(rec).__name__}")
    for k in keys:
        if k in rec:
            return rec[k]
    raise KeyError(
        f"records[{i}]: no {what} field; expected one of {list(keys)} (record keys: {sorted(rec)})"
    )


def _matcher(match: Match) -> Callable[[str, str], bool]:
    if match == "exact":
        return lambda gt, pred: gt == pred
    if match == "contain":
        return lambda gt, pred: gt in pred
    if match == "startswith":
        return lambda gt, pred: gt.startswith(pred)
    raise ValueError(f"match must be 'exact', 'contain' or 'startswith', got {match!r}")


def _correct(
    records: Sequence[Mapping[str, Any]], match: Match, normalize: Callable[[Any], str] = normalize_answer
):
    fn = _matcher(match)
    out = []
    for i, r in enumerate(records):
        pred = _get(r, _PRED_KEYS, i, "prediction")
        gt = _get(r, _GT_KEYS, i, "ground-truth")
        out.append(bool(fn(normalize(gt), normalize("" if pred is None else pred))))
    return out


def _grouped(
    records: Sequence[Mapping[str, Any]], correct: list[bool], key: str
) -> dict[str, dict[str, Any]]:
    groups: dict[str, list[bool]] = {}
    for i, (r, c) in enumerate(zip(records, correct)):
        if key not in r:
            raise KeyError(f"records[{i}]: missing grouping key {key!r} (record keys: {sorted(r)})")
        groups.setdefault(str(r[key]), []).append(c)
    return {g: {"accuracy": sum(v) / len(v), "correct": sum(v), "total": len(v)} for g, v in groups.items()}


@METRICS.register("scene_oa", task="scene_classification", higher_is_better=True)
def scene_oa(
    records: Sequence[Mapping[str, Any]], match: Match = "exact", class_key: str | None = None
) -> dict[str, Any]:
    """Scene-classification overall accuracy (and per-class accuracy, grouped by the ground truth by default).

    Args:
        records: ``{"prediction", "ground_truth"}`` dicts.
        match: answer matcher (RSCoVLM scores AID / UCM with ``"contain"``).
        class_key: record key to group by; default the normalised ground truth.

    Example:
        >>> scene_oa([{"output": "a dense residential area", "answer": "dense residential"}], match="contain")["OA"]
        1.0
    """
    correct = _correct(records, match)
    per_class: dict[str, list[bool]] = {}
    for i, (r, c) in enumerate(zip(records, correct)):
        key = str(r[class_key]) if class_key else normalize_answer(_get(r, _GT_KEYS, i, "ground-truth"))
        per_class.setdefault(key, []).append(c)
    accs = {k: sum(v) / len(v) for k, v in per_class.items()}
    n = len(correct)
    return {
        "OA": sum(correct) / n if n else 0.0,
        "AA": sum(accs.values()) / len(accs) if accs else 0.0,
        "correct": sum(correct),
        "total": n,
        "per_class": dict(sorted(accs.items())),
        "match": match,
    }


@METRICS.register("rsvqa", task="vqa", higher_is_better=True)
def rsvqa(
    records: Sequence[Mapping[str, Any]], type_key: str = "type", match: Match = "exact"
) -> dict[str, Any]:
    """RSVQA-style accuracy: per question type, AA (mean over types) and OA (over all questions).

    Args:
        records: ``{"prediction", "ground_truth", type_key}`` dicts (types such as presence, comparison,
            rural_urban, count).
        type_key: the question-type field.
        match: answer matcher (RSCoVLM scores RSVQA-HR/LR with ``"contain"``).

    Example:
        >>> recs = [{"prediction": "yes", "ground_truth": "yes", "type": "presence"},
        ...         {"prediction": "no", "ground_truth": "yes", "type": "presence"},
        ...         {"prediction": "rural", "ground_truth": "rural", "type": "rural_urban"}]
        >>> r = rsvqa(recs)
        >>> r["per_type"]["presence"]["accuracy"], r["AA"], round(r["OA"], 4)
        (0.5, 0.75, 0.6667)
    """
    correct = _correct(records, match)
    per_type = _grouped(records, correct, type_key)
    n = len(correct)
    return {
        "OA": sum(correct) / n if n else 0.0,
        "AA": sum(v["accuracy"] for v in per_type.values()) / len(per_type) if per_type else 0.0,
        "per_type": per_type,
        "correct": sum(correct),
        "total": n,
        "match": match,
    }


def _wordnet_synonyms() -> Callable[[str, str], bool]:
    try:
        from nltk.corpus import wordnet as wn

        wn.synsets("test")
    except (ImportError, LookupError) as exc:
        raise RuntimeError(
            "lrs_vqa(synonyms=True) needs NLTK with the WordNet corpus available offline "
            f"({type(exc).__name__}: {exc}). Enable it with: pip install nltk && python -m nltk.downloader wordnet "
            "(or set NLTK_DATA to a folder that holds corpora/wordnet). Without it use synonyms=False (exact match)."
        ) from None

    def are_synonyms(a: str, b: str) -> bool:
        for s1 in wn.synsets(a):
            for s2 in wn.synsets(b):
                sim = s1.path_similarity(s2)
                if sim is not None and sim > 0.8:
                    return True
        return False

    return are_synonyms


@METRICS.register("lrs_vqa", task="vqa", higher_is_better=True)
def lrs_vqa(
    records: Sequence[Mapping[str, Any]],
    synonyms: bool = False,
    normalization: Literal["rscovlm", "official"] = "rscovlm",
    id_key: str = "question_id",
    category_key: str = "category",
) -> dict[str, Any]:
    """LRS-VQA scoring: accuracy per source (FAIR / STAR / GLH) and per category, AA and OA.

    A prediction is correct if it equals the ground truth after normalisation -- ``"rscovlm"``:
    ``lower().strip().strip(".")``; ``"official"`` (the benchmark's ``evaluation_LRSVQA.py``): ``lower()`` only --
    or, with ``synonyms=True``, if any WordNet synset pair has ``path_similarity > 0.8`` (needs NLTK + WordNet
    offline; otherwise a RuntimeError says how to enable it). The source is the known prefix of the question id
    (else the id's part before the first ``_``).

    Returns:
        ``OA`` (all questions); ``AA`` (mean over categories of the accuracy pooled over sources, RSCoVLM's "Average
        Acc"); ``per_category``; ``per_source`` -> ``{"OA", "AA" (mean over that source's categories with
        samples), "per_category", "total"}``; and ``rscovlm``, the same numbers under RSCoVLM's key names.

    Example:
        >>> recs = [{"question_id": "FAIR_1", "category": "count", "output": "3", "ground_truth": "3."},
        ...         {"question_id": "GLH_7", "category": "count", "output": "2", "ground_truth": "4"}]
        >>> r = lrs_vqa(recs)
        >>> r["OA"], r["per_source"]["FAIR"]["OA"], r["per_source"]["GLH"]["AA"]
        (0.5, 1.0, 0.0)
    """
    syn = _wordnet_synonyms() if synonyms else None
    norm: Callable[[Any], str] = (
        normalize_answer if normalization == "rscovlm" else (lambda t: str(t).lower())
    )
    if normalization not in ("rscovlm", "official"):
        raise ValueError(f"lrs_vqa: normalization must be 'rscovlm' or 'official', got {normalization!r}")
    rows = []
    for i, r in enumerate(records):
        gt = norm(_get(r, _GT_KEYS, i, "ground-truth"))
        pred_raw = _get(r, _PRED_KEYS, i, "prediction")
        pred = norm("" if pred_raw is None else pred_raw)
        ok = gt == pred or (syn is not None and syn(gt, pred))
        qid = str(_get(r, (id_key,), i, "question id"))
        source = next((s for s in LRSVQA_SOURCES if qid.startswith(s)), qid.split("_")[0])
        rows.append((source, str(_get(r, (category_key,), i, "category")), ok))

    def acc(sel: list[bool]) -> float:
        return sum(sel) / len(sel)

    by_cat: dict[str, list[bool]] = {}
    by_src: dict[str, dict[str, list[bool]]] = {}
    for src, cat, ok in rows:
        by_cat.setdefault(cat, []).append(ok)
        by_src.setdefault(src, {}).setdefault(cat, []).append(ok)
    cat_order = [c for c in LRSVQA_CATEGORIES if c in by_cat] + sorted(
        c for c in by_cat if c not in LRSVQA_CATEGORIES
    )
    src_order = [s for s in LRSVQA_SOURCES if s in by_src] + sorted(
        s for s in by_src if s not in LRSVQA_SOURCES
    )
    per_category = {c: acc(by_cat[c]) for c in cat_order}
    per_source = {}
    for s in src_order:
        cats = {c: acc(by_src[s][c]) for c in cat_order if c in by_src[s]}
        flat = [ok for c in by_src[s] for ok in by_src[s][c]]
        per_source[s] = {
            "OA": acc(flat),
            "AA": sum(cats.values()) / len(cats),
            "per_category": cats,
            "total": len(flat),
        }
    all_ok = [ok for _, _, ok in rows]
    oa = acc(all_ok) if all_ok else 0.0
    aa = sum(per_category.values()) / len(per_category) if per_category else 0.0
    ref: dict[str, Any] = {"overall acc": oa}
    ref.update(
        {
            f"Overall Acc (Source {s})": per_source[s]["OA"] if s in per_source else None
            for s in LRSVQA_SOURCES
        }
    )
    ref.update({f"Overall Acc (Task {c})": per_category.get(c) for c in LRSVQA_CATEGORIES})
    ref.update({f"Average Acc (Source {s})": per_source[s]["AA"] for s in LRSVQA_SOURCES if s in per_source})
    ref["Average Acc"] = aa
    return {
        "OA": oa,
        "AA": aa,
        "per_category": per_category,
        "per_source": per_source,
        "total": len(all_ok),
        "rscovlm": ref,
        "synonyms": synonyms,
        "normalization": normalization,
    }


@METRICS.register("vrsbench_vqa", task="vqa", higher_is_better=True)
def vrsbench_vqa(records: Sequence[Mapping[str, Any]], type_key: str | None = "type") -> dict[str, Any]:
    """VRSBench VQA accuracy: exact match after :func:`normalize_answer`, overall and per question type.

    The benchmark's headline numbers use an LLM judge; this is its string-match counterpart. Records without
    ``type_key`` are only counted overall.

    Example:
        >>> vrsbench_vqa([{"prediction": "Two.", "ground_truth": "two", "type": "object quantity"}])["accuracy"]
        1.0
    """
    correct = _correct(records, "exact")
    per_type: dict[str, list[bool]] = {}
    if type_key:
        for r, c in zip(records, correct):
            if type_key in r:
                per_type.setdefault(str(r[type_key]), []).append(c)
    n = len(correct)
    return {
        "accuracy": sum(correct) / n if n else 0.0,
        "per_type": {t: {"accuracy": sum(v) / len(v), "total": len(v)} for t, v in sorted(per_type.items())},
        "correct": sum(correct),
        "total": n,
    }
