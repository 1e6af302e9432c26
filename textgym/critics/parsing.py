"""Reading free-form critic replies, and finding the phrases they name in the completion.

A critic LM answers in many styles; :func:`critique_from_labelled_reply` reads them all:

- a header per label and the phrases after it: ``Toxic phrases: stupid idiot | hate you`` (``|``, ``;`` or
  ``,`` between phrases), or one phrase per line below the header, bulleted or numbered;
- RELC's formats (Cao et al. 2024): numbered span headers (``Toxic Span 1: <phrase>``), bracketed span numbers
  under a label header (``Identified Negative Text Span:`` then ``[Span 1]: <phrase>``, or both on one line) and a
  trailing label (``Span 1: <phrase> (Label: Factually Incorrect)``), whose words are mapped to the task's labels
  (:data:`LABEL_WORDS`);
- quoted phrases inside sentences (``The phrase "stupid idiot" is toxic.``);
- JSON: a list of phrases, a list of ``{"text": ..., "label": ...}`` objects, or ``{label: [phrases]}``;
- "None identified" and the like: nothing to mark.

:func:`locate` finds each phrase in the completion: exactly, then ignoring case, then ignoring whitespace and
punctuation, then fuzzily. A phrase that cannot be found is dropped and counted, never guessed; a reply that names
phrases none of which can be found is a failed critique (``"unlocated: ..."``), not a clean text. Where a phrase
may be a list (``a, b`` or ``a and b``), the first reading whose pieces are all found wins, the whole phrase first;
failing that, the reading with the most pieces found.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from textgym.critics.base import LABELS, Critique, Span

NONE_ANSWERS = re.compile(
    r"\W*(?:none(?: (?:identified|found|detected))?|nothing(?: (?:to report|found))?|no|n/?a"
    r"|no(?: \w+){0,3} (?:spans?|phrases?|words?|language|content)(?: (?:found|identified|detected))?"
    r"|there (?:are|is) no\b.*)\W*",
    re.IGNORECASE,
)
"""A whole answer (or list item) that says there is nothing to mark; matched with ``fullmatch``."""

LABEL_WORDS: dict[str, tuple[str, ...]] = {
    "toxic": ("toxicity", "offensive"),
    "incorrect": (
        "factually incorrect",
        "non factual",
        "nonfactual",
        "not factual",
        "factuality",
        "unfaithful",
        "unsupported",
        "inaccurate",
        "hallucinated",
        "hallucination",
    ),
    "irrelevant": ("relevance", "irrelevance", "not relevant"),
    "incoherent": ("coherence", "incoherence", "not coherent", "not fluent", "disfluent", "fluency"),
}
"""Other words a critic may use for a label, besides the label itself: RELC's summary labels ("Factually
Incorrect", "Non-factual", "Irrelevant", "Incoherent") and dimensions ("Factuality", "Relevance", "Coherence"), and
common variants. Matched case-insensitively as whole words, hyphens and underscores read as spaces."""

_BULLET = re.compile(r"^\s*(?:[-*•]|\(?\d+[.)]|\(?[a-z][.)](?=\s))\s*", re.IGNORECASE)
_MARKDOWN = re.compile(r"\*\*|__|`")
_SPAN_WORDS = r"(?:span|phrase|segment|excerpt|item)"
_SPAN_HEADER = re.compile(
    rf"^(?:\[(?P<inner>[A-Za-z /_-]{{0,40}}?)\s*{_SPAN_WORDS}\s*#?\s*\d+\s*\]"
    rf"|(?:(?P<head>[A-Za-z][A-Za-z /_-]{{0,40}}?)\s+)?{_SPAN_WORDS}\s*#?\s*\d+)"
    r"\s*(?:\((?P<paren>[^()]{1,40})\))?\s*(?:[:.)–—-]\s*|(?<=\])\s*)",
    re.IGNORECASE,
)
"""``Toxic Span 1:``, ``Span 2 -``, ``[Span 1]:``, ``Span 1 (Incoherent):``: a span's number, maybe a label."""
_HEADER = re.compile(r"^(?P<head>[A-Za-z][A-Za-z /_'’-]{0,50}(?:\(s\))?)\s*:(?:\s+|$)")
"""``Toxic phrases:``, ``Identified Positive Text Span:``: a header of letters before a colon."""
_NAMED_HEADER = re.compile(rf"\b(?:{_SPAN_WORDS}|word)s?\b", re.IGNORECASE)
_TRAILING_LABEL = re.compile(
    r"\s*(?:[(\[]\s*(?:label|category|type)\s*[:=]\s*(?P<bracketed>[^()\[\]]+?)\s*[)\]]"
    r"|(?:\s[-–—|]|,)\s*(?:label|category)\s*:\s*(?P<dashed>[A-Za-z][\w /-]*?)"
    r"|\((?P<bare>[A-Za-z][\w /-]*?)\))\s*[.,;]?\s*$",
    re.IGNORECASE,
)
"""``<phrase> (Label: Irrelevant)``, ``<phrase> - Label: Irrelevant``, ``<phrase> (irrelevant)`` at a line's end."""
_QUOTED = re.compile(r"\"([^\"]+)\"|“([^”]+)”|«([^»]+)»|(?<!\w)'(.{2,}?)'(?!\w)")
_FENCE = re.compile(r"```[A-Za-z]*")
_NEGATION = re.compile(r"\b(?:non|not|no|un)\s+$")
_TEXT_KEYS = ("text", "span", "phrase", "quote", "substring", "content", "value")
_LABEL_KEYS = ("label", "type", "category", "kind", "tag")
_LIST_KEYS = ("spans", "phrases", "items", "annotations", "results", "entities", "answer", "output")


@dataclass(frozen=True)
class _Named:
    """A phrase a reply names: its readings (the whole phrase, then as a list), and its label.

    ``label`` is None where the reply does not say which of the task's labels it is; ``counts`` says whether such
    an unlabelled phrase is still a named span (a numbered or JSON span, or one with a label the task lacks), to be
    counted as dropped, rather than chatter.
    """

    readings: tuple[tuple[str, ...], ...]
    label: str | None
    counts: bool = False


@dataclass(frozen=True)
class _Reading:
    """What a reply names: its phrases, whether it named any label of the task at all, and whether it said "none"."""

    phrases: tuple[_Named, ...]
    labelled: bool
    said_none: bool = False


def _norm(text: str) -> str:
    return re.sub(r"[\s_-]+", " ", text.lower()).strip()


def _labels_named(text: str, labels: Sequence[str]) -> list[str]:
    """The labels of ``labels`` that ``text`` names, by the label itself or a word of :data:`LABEL_WORDS`.

    A word after "non", "not", "no" or "un" does not count ("non-toxic" names no label), unless the negation is
    part of the word ("not relevant" -> irrelevant).
    """
    text = _norm(text)
    named = []
    for label in labels:
        words = [re.escape(_norm(label)) + r"\w*"] + [re.escape(_norm(word)) for word in LABEL_WORDS.get(label, ())]
        for match in re.finditer(rf"\b(?:{'|'.join(words)})\b", text):
            if not _NEGATION.search(text[: match.start()]) or match.group().split()[0] in ("non", "not", "no"):
                named.append(label)
                break
    return named


def _label_of(text: str, labels: Sequence[str]) -> str | None:
    """The one label ``text`` names; any label at all names a single-label task's label."""
    if len(labels) == 1:
        return labels[0]
    named = _labels_named(text, labels)
    return named[0] if len(named) == 1 else None


def _clean_phrase(text: str) -> str:
    text = text.strip().strip("\"'“”«»`").strip()
    return re.sub(r"[\s.,;:]+$", "", text)


def _readings(text: str, splittable: bool = True) -> tuple[tuple[str, ...], ...]:
    """The ways to read ``text``: whole, then split at commas, then also at "and"/"or"; empty and "none" dropped."""

    def pieces(parts: Iterable[str]) -> tuple[str, ...]:
        cleaned = (_clean_phrase(re.sub(r"^(?:and|or)\s+", "", part.strip(), flags=re.IGNORECASE)) for part in parts)
        return tuple(piece for piece in cleaned if piece and not NONE_ANSWERS.fullmatch(piece))

    readings = [(text,)]
    if splittable:
        commas = pieces(re.split(r"\s*,\s*", text))
        conjunctions = pieces(part for piece in commas for part in re.split(r"\s+(?:and|or)\s+", piece))
        for reading in (commas, conjunctions):
            if len(reading) > 1 and reading not in readings:
                readings.append(reading)
    return tuple(readings)


def _strip_headers(line: str, labels: Sequence[str]) -> tuple[list[str], bool, bool, str]:
    """Takes the headers off the start of a line.

    Returns:
        The labels the headers name, whether a header without a span number was there (a section's header),
        whether a span number was there, and the rest of the line.
    """
    named: list[str] = []
    section = numbered = False
    for _ in range(3):  # e.g. "Identified Positive Text Span: [Span 1]: <phrase>"
        match = _SPAN_HEADER.match(line)
        if match:
            numbered = True
            named += _labels_named(" ".join(part or "" for part in match.group("inner", "head", "paren")), labels)
        else:
            match = _HEADER.match(line)
            if match is None:
                break
            head = match.group("head")
            # A second header must say what it heads ("Answer: Toxic phrases: ..."), or it is part of the phrase.
            if (section or numbered) and not (_labels_named(head, labels) or _NAMED_HEADER.search(head)):
                break
            section = True
            named += _labels_named(head, labels)
        line = line[match.end() :]
    return list(dict.fromkeys(named)), section and not numbered, numbered, line.strip()


def _parts(body: str, labels: Sequence[str]) -> list[tuple[str, str | None, bool]]:
    """The phrases of a line's body: ``(phrase, label text of a trailing label or None, splittable)``."""
    if re.search(r"[|;]", body):
        listed = []
        for part in re.split(r"\s*[|;]\s*", body):
            part, label = _trailing_label(part, labels)
            listed.append((part, label, True))
        return listed
    body, label = _trailing_label(body, labels)
    quoted = [next(group for group in match.groups() if group) for match in _QUOTED.finditer(body)]
    if quoted:
        return [(phrase, label, False) for phrase in quoted]
    return [(body, label, True)]


def _trailing_label(text: str, labels: Sequence[str]) -> tuple[str, str | None]:
    """``text`` without a trailing label, and the label's words (a bare ``(word)`` only where it names a label)."""
    match = _TRAILING_LABEL.search(text)
    if match is None:
        return text, None
    if match.group("bare") is not None:
        if not _labels_named(match.group("bare"), labels):
            return text, None  # a parenthesis that is part of the phrase
        return text[: match.start()], match.group("bare")
    return text[: match.start()], match.group("bracketed") or match.group("dashed")


_UNSET = object()
"""The section of lines before any header: a single-label task's label unless some header names it."""


def _read_lines(reply: str, labels: Sequence[str]) -> _Reading:
    """Reads a reply line by line.

    A header that names one label opens its section; a header that names none, or a line that says "none", ends
    it. Lines outside every section name a single-label task's label when no header names that label at all.
    """
    found: list[tuple[tuple[tuple[str, ...], ...], object, bool]] = []  # (readings, label or section, counts)
    current: object = _UNSET
    sectioned = labelled = said_none = False
    for raw_line in reply.strip().splitlines():
        line = _BULLET.sub("", _MARKDOWN.sub("", raw_line).strip())
        if re.match(r"#+(?:\s|$)", line):  # a markdown heading ("### Toxic spans"), a few-shot "##### Example"
            named = _labels_named(line, labels)
            if len(named) == 1:
                current, sectioned, labelled = named[0], True, True
            continue
        named, section, numbered, body = _strip_headers(line, labels)
        if named:
            current = named[0] if len(named) == 1 else _UNSET
            sectioned = labelled = True
        elif section:
            current = _UNSET  # "Explanation: ...", "Problematic Spans Identified in the Summary:"
        if not body or body.endswith(":"):
            continue
        if NONE_ANSWERS.fullmatch(body):
            current, said_none = None, True  # what follows "Toxic phrases: none" is chatter ("Hope this helps!")
            continue
        if body[0] in "[{":  # 'Negative phrases: ["boring", "too long"]'
            try:
                listed = _from_json(json.loads(body), labels, current if isinstance(current, str) else None)
            except ValueError:
                listed = None
            if listed is not None:
                found += [(phrase.readings, phrase.label, phrase.counts) for phrase in listed.phrases]
                labelled |= listed.labelled
                continue
        for text, label_text, splittable in _parts(body, labels):
            text = _clean_phrase(text)
            if not text or NONE_ANSWERS.fullmatch(text):
                continue
            label = current if label_text is None else _label_of(label_text, labels)
            labelled |= label_text is not None and label is not None
            found.append((_readings(text, splittable), label, numbered or label_text is not None))
    fill = labels[0] if len(labels) == 1 and not sectioned else None
    phrases = (_Named(readings, fill if label is _UNSET else label, counts) for readings, label, counts in found)
    return _Reading(tuple(phrases), labelled, said_none)


def _from_json(value: Any, labels: Sequence[str], default: str | None) -> _Reading | None:
    """The phrases of a JSON answer, or None when it is not one (a list of numbers, an object of other keys)."""
    if len(labels) == 1:
        default = labels[0]
    if isinstance(value, str):  # one phrase, never split: JSON says where it ends
        text = _clean_phrase(value)
        named = () if not text or NONE_ANSWERS.fullmatch(text) else (_Named(((text,),), default, True),)
        return _Reading(named, False)
    if isinstance(value, list):
        phrases, labelled = [], False
        for element in value:
            found = _from_json(element, labels, default) if isinstance(element, (str, dict)) else None
            if found is None:
                return None
            phrases += found.phrases
            labelled |= found.labelled
        return _Reading(tuple(phrases), labelled)
    if not isinstance(value, dict):
        return None
    fields = {_norm(key): item for key, item in value.items() if isinstance(key, str)}
    text = next((fields[key] for key in _TEXT_KEYS if isinstance(fields.get(key), str)), None)
    if text is not None:
        label_text = next((fields[key] for key in _LABEL_KEYS if isinstance(fields.get(key), str)), None)
        label = default if label_text is None else _label_of(label_text, labels)
        return _Reading(_from_json(text, labels, label).phrases, label_text is not None and label is not None)
    for key in _LIST_KEYS:
        if isinstance(fields.get(key), (list, dict)):
            return _from_json(fields[key], labels, default)
    phrases, labelled = [], False
    for key, item in fields.items():
        named = _labels_named(key, labels)
        if len(named) != 1 or not (item is None or isinstance(item, (str, list))):
            continue
        found = _from_json(item or [], labels, named[0])
        if found is not None:
            phrases += found.phrases
            labelled = True
    return _Reading(tuple(phrases), labelled) if labelled or not value else None


def _json_reply(reply: str, labels: Sequence[str]) -> _Reading | None:
    """The phrases of a reply that is (or holds, on lines of its own or in a code fence) a JSON answer."""
    text = _FENCE.sub("", reply)
    decoder = json.JSONDecoder()
    for match in re.finditer(r"(?m)^\s*([\[{])", text):
        try:
            value, end = decoder.raw_decode(text, match.start(1))
        except ValueError:
            continue
        if _labels_named(text[end:], labels):  # more sections follow ("Negative: [...]"): read line by line
            return None
        before = _labels_named(text[: match.start(1)], labels)
        found = _from_json(value, labels, before[0] if len(before) == 1 else None)
        if found is not None:
            return _Reading(found.phrases, found.labelled or len(before) == 1)
    return None


def _read_reply(reply: str | None, labels: Sequence[str]) -> _Reading | None:
    """Reads what a reply names: its phrases, each with its readings and label (see the module docstring).

    Args:
        reply: The critic's reply.
        labels: The task's labels; headers and trailing labels are mapped to them.

    Returns:
        The phrases, or None for an empty reply.
    """
    if reply is None or not reply.strip():
        return None
    return _json_reply(reply, labels) or _read_lines(reply, labels)


def parse_phrases(reply: str) -> list[str] | None:
    """Phrases named in a critic's reply, each as written (whole, before any list reading), whatever their label.

    Returns:
        The phrases in order, ``[]`` when the reply says there are none, or ``None`` when the reply is empty.
    """
    reading = _read_reply(reply, ())
    return None if reading is None else [named.readings[0][0] for named in reading.phrases]


def _normalise(text: str) -> tuple[str, list[int]]:
    """Lower-cased words of ``text`` joined by single spaces, and each output character's index in ``text``."""
    out, index = [], []
    for match in re.finditer(r"\w+", text):
        # Lower-case character by character, keeping any character whose lower case is longer ("İ"), so that
        # every output character maps back to one input character.
        word = "".join(char.lower() if len(char.lower()) == 1 else char for char in match.group())
        if out:
            out.append(" ")
            index.append(match.start())
        out.extend(word)
        index.extend(range(match.start(), match.end()))
    return "".join(out), index


def locate(phrase: str, completion: str, taken: Sequence[tuple[int, int]] = (), fuzzy: float = 0.85):
    """Finds ``phrase`` in ``completion``, preferring an occurrence not in ``taken``.

    Tries, in order: an exact match, a case-insensitive match, a match of the words alone (whitespace and
    punctuation ignored), and a fuzzy match of a word window with difflib similarity of at least ``fuzzy``.

    Returns:
        ``(start, end)`` character offsets into ``completion``, or ``None`` when nothing matches well enough.
    """
    phrase = phrase.strip()
    if not phrase:
        return None
    return _locate_words(phrase, completion, taken) or _fuzzy(_normalise(phrase)[0], completion, fuzzy)


def _locate_words(phrase: str, completion: str, taken: Sequence[tuple[int, int]]):
    """:func:`locate` without its fuzzy stage."""
    if not phrase.strip():
        return None
    for flags in (0, re.IGNORECASE):  # matching on the original text keeps offsets right ("İ".lower() is longer)
        found = [m.span() for m in re.finditer(re.escape(phrase), completion, flags)]
        if found:
            return next((hit for hit in found if hit not in taken), found[0])
    words, index = _normalise(completion)
    target, _ = _normalise(phrase)
    if not target:
        return None
    found = [m.start() for m in re.finditer(re.escape(target), words)]
    if found:
        hits = [(index[start], index[start + len(target) - 1] + 1) for start in found]
        return next((hit for hit in hits if hit not in taken), hits[0])
    return None


def _fuzzy(target: str, completion: str, threshold: float):
    if not target:
        return None
    tokens = list(re.finditer(r"\w+", completion))
    size = len(target.split())
    best, best_ratio = None, -1.0
    for width in {max(1, size - 1), size, size + 1}:
        for first in range(0, max(0, len(tokens) - width) + 1):
            window = tokens[first : first + width]
            if not window:
                continue
            candidate = " ".join(match.group().lower() for match in window)
            ratio = difflib.SequenceMatcher(None, target, candidate).ratio()
            if ratio >= threshold and ratio > best_ratio:
                best, best_ratio = (window[0].start(), window[-1].end()), ratio
    return best


def _locate_named(named: _Named, completion: str, taken: list[tuple[int, int]], fuzzy: float) -> list:
    """The hits of the pieces of one reading of ``named``; None for a piece not found.

    The reading is the first whose pieces are all found without fuzzy matching, else the first whose pieces are all
    found with it, else the one with the most pieces found (of equals, the one split most: a list is what it named).
    """
    best: list = []
    for exact in (True, False):
        for reading in named.readings:
            hits: list = []
            for phrase in reading:
                near = [*taken, *filter(None, hits)]
                hit = _locate_words(phrase, completion, near) if exact else locate(phrase, completion, near, fuzzy)
                hits.append(hit)
            if all(hits):
                return hits
            if sum(map(bool, hits)) >= sum(map(bool, best)):
                best = hits
    return best


def _critique(reading: _Reading | None, reply: str | None, completion: str, labels, fuzzy: float) -> Critique:
    """Locates what a reply names; see :func:`critique_from_labelled_reply` for the outcomes."""
    if reading is None:
        return Critique.failed("empty: the reply is empty", raw=reply)
    if len(labels) > 1 and not reading.labelled:
        named_spans = any(phrase.counts for phrase in reading.phrases)
        if not reading.phrases or (reading.said_none and not named_spans):  # "None identified", maybe chatter
            return Critique(raw=reply)
        return Critique.failed(f"unparsable: the reply names none of the labels {', '.join(labels)}", raw=reply)
    spans: set[Span] = set()
    taken: dict[str, list[tuple[int, int]]] = {label: [] for label in labels}
    named = dropped = 0
    for phrase in reading.phrases:
        if phrase.label is None:  # a numbered span without a label, or with one the task lacks; else chatter
            dropped += len(phrase.readings[0]) if phrase.counts else 0
            continue
        hits = _locate_named(phrase, completion, taken[phrase.label], fuzzy)
        named += len(hits)
        for hit in filter(None, hits):
            taken[phrase.label].append(hit)
            spans.add(Span(hit[0], hit[1], phrase.label))
        dropped += hits.count(None)
    if named and not spans:
        many = "s" if named != 1 else ""
        return Critique.failed(f"unlocated: the critic named {named} phrase{many}, none found in the completion", reply)
    ordered = sorted(spans, key=lambda span: (span.start, span.end, labels.index(span.label)))
    return Critique(tuple(ordered), dropped=dropped, raw=reply)


def critique_from_reply(reply: str | None, completion: str, label: str, fuzzy: float = 0.85) -> Critique:
    """Reads a reply whose phrases all have one label and locates them (see :func:`critique_from_labelled_reply`)."""
    return _critique(_read_reply(reply, (label,)), reply, completion, (label,), fuzzy)


def critique_from_labelled_reply(reply: str | None, completion: str, task: str, fuzzy: float = 0.85) -> Critique:
    """Reads a listing critic's reply (any format of the module docstring) and locates its phrases.

    A label left out or followed by "none" marks nothing. In a task of one label, a reply without a header names
    that label's phrases; in a task of several, phrases outside any label's section and without a label of their
    own are chatter (numbered ones are counted as dropped).

    Args:
        reply: The critic's reply.
        completion: The text the phrases are looked up in.
        task: The task, whose labels the headers name.
        fuzzy: Least similarity of a fuzzy phrase match (see :func:`locate`).

    Returns:
        The critique, with the phrases that could not be located counted in ``dropped``; or a failed critique
        whose error starts with ``"empty: "`` (no text), ``"unparsable: "`` (a task of several labels, a reply that
        names none of them and does not say "none") or ``"unlocated: "`` (phrases named, none of them found).
    """
    labels = LABELS[task]
    return _critique(_read_reply(reply, labels), reply, completion, labels, fuzzy)
