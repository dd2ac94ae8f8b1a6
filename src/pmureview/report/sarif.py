"""`--format sarif`: SARIF 2.1.0, one run, every finding (check level included, as `note`)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from .. import __version__
from ..rule.model import Finding, RuleMeta, Severity

if TYPE_CHECKING:
    from ..engine.review import Review

SCHEMA_URI = "https://json.schemastore.org/sarif-2.1.0.json"
# where findings on the subject, commit message, trailers or cover letter point (Gerrit's name for it)
COMMIT_MSG = "COMMIT_MSG"
FINGERPRINT_KEY = "pmureview/v1"

LEVELS = {Severity.ERROR: "error", Severity.WARNING: "warning", Severity.CHECK: "note"}


def _help_text(meta: RuleMeta) -> str:
    d = meta.docs
    parts = [meta.title]
    for head, body in (
        ("What it does", d.what),
        ("Why it matters", d.why),
        ("Example", d.example),
        ("Use instead", d.use_instead),
        ("Known problems", d.known_problems),
    ):
        if body.strip():
            parts.append(f"{head}:\n{body.strip()}")
    if d.references:
        parts.append("References:\n" + "\n".join(f"- {r}" for r in d.references))
    return "\n\n".join(parts)


def _rule(meta: RuleMeta) -> dict[str, Any]:
    full = meta.docs.what.strip() or meta.title
    return {
        "id": meta.id,
        "name": meta.id.replace("/", "_"),
        "shortDescription": {"text": meta.title},
        "fullDescription": {"text": full},
        "help": {"text": _help_text(meta)},
        "defaultConfiguration": {"level": LEVELS[meta.severity]},
        "properties": {
            "tags": [meta.pack],
            "confidence": meta.confidence.value,
            "scope": meta.scope.value,
            "status": meta.status,
        },
    }


def _placeholder_rule(rule_id: str, severity: Severity) -> RuleMeta:
    # engine findings (pmureview/internal-error, …) may name a rule that is not in review.rules
    return RuleMeta(id=rule_id, title=rule_id, severity=severity)


def _location(f: Finding) -> dict[str, Any]:
    loc = f.location
    if loc.path is None:
        artifact: dict[str, Any] = {
            "uri": COMMIT_MSG,
            "properties": {"patch": loc.patch, "section": loc.section or "message"},
        }
    else:
        artifact = {"uri": loc.path, "uriBaseId": "SRCROOT"}
    physical: dict[str, Any] = {"artifactLocation": artifact}
    if loc.line:
        region: dict[str, Any] = {"startLine": loc.line}
        if loc.column:
            region["startColumn"] = loc.column
        if loc.end_line and loc.end_line >= loc.line:
            region["endLine"] = loc.end_line
        if f.snippet:
            region["snippet"] = {"text": f.snippet}
        physical["region"] = region
    return {"physicalLocation": physical}


def _result(f: Finding, index: int, review: Review) -> dict[str, Any]:
    props: dict[str, Any] = {"patch": f.location.patch, "confidence": f.confidence.value}
    patch = next((p for p in review.series.patches if p.number == f.location.patch), None)
    mail = patch.mail if patch else (review.series.cover.mail if review.series.cover else None)
    if mail is not None and (patch or f.location.patch == 0):
        props["message-id"] = mail.msgid
        props["subject"] = mail.subject
    if f.location.section:
        props["section"] = f.location.section
    if f.note:
        props["note"] = f.note
    if f.suggestion:
        props["suggestion"] = f.suggestion
    out = {
        "ruleId": f.rule,
        "ruleIndex": index,
        "level": LEVELS[f.severity],
        "message": {"text": f.message},
        "locations": [_location(f)],
        "partialFingerprints": {FINGERPRINT_KEY: f.fingerprint()},
        "properties": props,
    }
    if review.versions is not None and review.versions.compared:
        st = review.versions.status_of(f)
        # SARIF's own words for "since the previous run": carried -> unchanged; resolved -> absent
        if st is not None:
            out["baselineState"] = {"new": "new", "carried": "unchanged"}[st.status]
            props["since"] = st.since
    return out


def _absent(f: Finding, index: int, review: Review) -> dict[str, Any]:
    """A finding of the previous posting that is gone: its vN-1 location, `baselineState: absent`."""
    prev = review.versions.previous_review
    out = _result(f, index, prev) if prev is not None else _result(f, index, review)
    out["baselineState"] = "absent"
    out["properties"]["revision"] = review.versions.previous.revision
    return out


def build_sarif(review: Review) -> dict[str, Any]:
    metas = dict(review.rules)
    versions = review.versions if review.versions is not None and review.versions.compared else None
    resolved = list(versions.resolved) if versions else []
    for f in [*review.findings, *resolved]:
        metas.setdefault(f.rule, _placeholder_rule(f.rule, f.severity))
    ids = sorted(metas)
    index = {rid: i for i, rid in enumerate(ids)}
    series = review.series
    run_props: dict[str, Any] = {"mode": review.mode, "revision": series.revision, "subject": series.subject}
    if review.base:
        run_props["base"] = review.base
    run: dict[str, Any] = {
        "tool": {
            "driver": {
                "name": "pmureview",
                "version": __version__,
                "rules": [_rule(metas[rid]) for rid in ids],
            }
        },
        "columnKind": "unicodeCodePoints",
        "results": [_result(f, index[f.rule], review) for f in review.findings]
        + [_absent(f, index[f.rule], review) for f in resolved],
        "properties": run_props,
    }
    return {"$schema": SCHEMA_URI, "version": "2.1.0", "runs": [run]}


def render_sarif(review: Review) -> str:
    """Deterministic: keys sorted, results in the review's finding order."""
    return json.dumps(build_sarif(review), indent=2, sort_keys=True, ensure_ascii=False) + "\n"
