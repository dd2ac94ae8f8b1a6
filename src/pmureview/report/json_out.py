"""JSON output (schema_version 1): the series, the base, the rules that ran, and every finding."""

from __future__ import annotations

import json

from ..engine.review import Review

SCHEMA_VERSION = 1


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
        "findings": [f.to_dict() for f in review.findings],
    }
    return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"
