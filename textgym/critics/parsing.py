"""Reading free-form critic replies, and finding the phrases they name in the completion.

A critic LM answers in text ("Toxic phrases: stupid idiot | hate you", a numbered list, quoted phrases, "None
identified", with chatter around). :func:`parse_phrases` pulls out the phrases; :func:`locate` finds each in the
completion: exactly, then ignoring case, then ignoring whitespace and punctuation differences, then fuzzily.
Phrases that cannot be found are dropped and counted, never guessed. :func:`critique_from_labelled_reply` reads a
whole reply of a listing critic (one line per label), as the OpenAI-compatible and the local listing critics get.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Sequence

from textgym.critics.base import LABELS, Critique, Span
from textgym.critics.prompts import split_reply_by_label

NONE_ANSWERS = re.compile(
    r"\W*(?:none(?: (?:identified|found|detected))?|nothing(?: (?:to report|found))?|no|n/?a"
    r"|no(?: \w+){0,3} (?:spans?|phrases?)(?: (?:found|identified|detected))?"
    r"|there (?:are|is) no\b.*)\W*",
    re.IGNORECASE,
)
"""A whole answer (or list item) that says there is nothing to mark; matched with ``fullmatch``."""
_BULLET = re.compile(r"^\s*(?:[-*•]|\(?\d+[.)]|\(?[a-z][.)](?=\s))\s*", re.IGNORECASE)
_HEADER = re.compile(r"^\s*[A-Za-z][A-Za-z /_-]{0,40}:\s*")
_QUOTED = re.compile(r"\"([^\"]+)\"|“([^”]+)”|«([^»]+)»|(?<!\w)'(.{2,}?)'(?!\w)")
_MARKDOWN = re.compile(r"\*\*|__|`")


def parse_phrases(reply: str) -> list[str] | None:
    """Phrases named in a critic's reply.

    Accepts one phrase per line (bullets or numbers allowed), phrases separated by ``|`` or ``;``, and quoted
    phrases inside sentences. A line introduced by a header ("Toxic phrases:") is read after the header.

    Returns:
        The phrases in order, ``[]`` when the reply says there are none, or ``None`` when the reply is empty.
    """
    if not reply or not reply.strip():
        return None
    phrases: list[str] = []
    for line in reply.strip().splitlines():
        line = _BULLET.sub("", _MARKDOWN.sub("", line).strip())
        body = _HEADER.sub("", line, count=1) if _HEADER.match(line) else line
        if not body.strip() or body.rstrip().endswith(":") or NONE_ANSWERS.fullmatch(body):
            continue
        listed = re.search(r"[|;]", body) is not None
        quoted = [] if listed else [next(g for g in m.groups() if g) for m in _QUOTED.finditer(body)]
        parts = quoted or re.split(r"\s*[|;]\s*", body)
        for part in parts:
            part = part.strip().strip("\"'“”«»`").strip()
            part = re.sub(r"[\s.,;:]+$", "", part)
            if part and not NONE_ANSWERS.fullmatch(part):
                phrases.append(part)
    return phrases


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
    return _fuzzy(target, completion, fuzzy)


def _fuzzy(target: str, completion: str, threshold: float):
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


def critique_from_reply(reply: str | None, completion: str, label: str, fuzzy: float = 0.85) -> Critique:
    """Parses a reply naming phrases of one label and locates them; an empty or missing reply is a failure."""
    phrases = parse_phrases(reply or "")
    if phrases is None:
        return Critique.failed("empty reply", raw=reply)
    spans, taken, dropped = [], [], 0
    for phrase in phrases:
        hit = locate(phrase, completion, taken, fuzzy)
        if hit is None:
            dropped += 1
            continue
        taken.append(hit)
        spans.append(Span(hit[0], hit[1], label))
    return Critique(tuple(sorted(set(spans), key=lambda s: (s.start, s.end))), dropped=dropped, raw=reply)


def critique_from_labelled_reply(reply: str | None, completion: str, task: str, fuzzy: float = 0.85) -> Critique:
    """Reads a listing critic's reply, one header per label ("Negative phrases: a | b"), and locates its phrases.

    A label left out or followed by nothing marks nothing. A reply with no label header is read as a "none"
    answer when it says so ("None identified"), and as a failure otherwise.

    Args:
        reply: The critic's reply.
        completion: The text the phrases are looked up in.
        task: The task, whose labels the headers name.
        fuzzy: Least similarity of a fuzzy phrase match (see :func:`locate`).

    Returns:
        The critique, with the phrases that could not be located counted in ``dropped``; a failed critique whose
        error starts with ``"empty: "`` (no text) or ``"unparsable: "`` (no label header and not "none").
    """
    if reply is None or not reply.strip():
        return Critique.failed("empty: the reply is empty", raw=reply)
    labels = LABELS[task]
    sections = split_reply_by_label(reply, task)
    if not sections:
        if parse_phrases(reply) == []:  # "None identified" and the like: nothing of any label
            return Critique(raw=reply)
        return Critique.failed(f"unparsable: the reply names none of the labels {', '.join(labels)}", raw=reply)
    spans: list[Span] = []
    dropped = 0
    for label in labels:
        text = sections.get(label)
        if text is None or not text.strip():  # a label left out, or "Negative phrases:" with nothing after
            continue
        part = critique_from_reply(text, completion, label, fuzzy)
        if part.ok:
            spans.extend(part.spans)
            dropped += part.dropped
    spans.sort(key=lambda span: (span.start, span.end, labels.index(span.label)))
    return Critique(tuple(spans), dropped=dropped, raw=reply)
