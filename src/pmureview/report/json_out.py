"""JSON output (schema_version 2): the series, the base, the rules that ran, and every finding.

Version 2 adds version tracking (docs/versions.md): `series.previous`, `patch_map`, per-finding
`status`/`since`, `resolved` and `unanswered`.
"""

from __future__ import annotations

import json

from ..engine.review import Review

SCHEMA_VERSION = 2


def series_info(review: Review) -> dict:
    s = review.series
    return {
        "subject": s.subject,
        "revision": s.revision,
        "total": s.total,
        "cover": s.cover.mail.msgid if s.cover else None,
        "base_commit": s.base_commit,
        "change_id": s.change_id,
        "base": review.base,
        "mode": review.mode,
        "missing": list(s.missing),
        "duplicates": s.duplicates,
        "other_revisions": list(s.other_revisions),
        "previous": review.versions.previous.to_dict() if review.versions is not None else None,
        "patches": [
            {
                "number": p.number,
                "subject": p.subject,
                "msgid": p.mail.msgid,
                "author": p.mail.author,
                "files": [{"path": f.path, "old_path": f.old_path, "kind": f.kind.value} for f in p.files],
            }
            for p in s.patches
        ],
    }


def render_json(review: Review) -> str:
    doc = {
        "schema_version": SCHEMA_VERSION,
        "series": series_info(review),
        "rules": sorted(review.rules),
        "findings": [_finding(f, review) for f in review.findings],
    }
    doc.update(versions_info(review))
    return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"


def _finding(f, review: Review) -> dict:
    d = f.to_dict()
    st = review.versions.status_of(f) if review.versions is not None else None
    d["status"] = st.status if st else None  # null: nothing was compared
    d["since"] = st.since if st else None
    return d


def versions_info(review: Review) -> dict:
    """`patch_map`, `resolved`, `unanswered`, and `series.previous` is set by series_info."""
    v = review.versions
    if v is None:
        return {"patch_map": [], "resolved": [], "unanswered": []}
    rev = v.previous.revision
    return {
        "patch_map": [m.to_dict() for m in v.previous.matches],
        "resolved": [{"status": "resolved", "revision": rev, "rule": f.rule, "severity": f.severity.value,
                      "patch": f.location.patch, "path": f.location.path, "line": f.location.line,
                      "message": f.message, "fingerprint": f.fingerprint()} for f in v.resolved],
        "unanswered": [c.as_dict() for c in v.comments],
    }
