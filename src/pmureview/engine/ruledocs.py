"""Rule docs rendered in ruff's sections (for `rules show` and docs/rules/<id>.md)."""

from __future__ import annotations

from ..rule.model import RuleMeta


def render_markdown(meta: RuleMeta) -> str:
    d = meta.docs
    out = [f"# {meta.id}", "", meta.title, "",
           f"Severity: {meta.severity.value} · confidence: {meta.confidence.value} · scope: "
           f"{meta.scope.value} · files: {', '.join(meta.files)}"
           + (" · needs a base" if meta.needs_base else "") + (f" · {meta.status}" if meta.status != "stable" else ""),
           ""]
    for title, body, code in (("What it does", d.what, False), ("Why is this bad?", d.why, False),
                              ("Example", d.example, True), ("Use instead", d.use_instead, True),
                              ("Known problems", d.known_problems, False)):
        if body:
            out += [f"## {title}", ""]
            out += ["```c", body.rstrip(), "```"] if code else [body.strip()]
            out.append("")
    if d.references:
        out += ["## References", ""] + [f"- {r}" for r in d.references] + [""]
    return "\n".join(out)
