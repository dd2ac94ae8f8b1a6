"""locking/missing-write-once: a plain store to a field that other code accesses with READ_ONCE()/WRITE_ONCE()."""

from __future__ import annotations

import re
from collections.abc import Iterator

from pmureview.analyses.enclosing import enclosing_function_name
from pmureview.lang.c import text
from pmureview.rule.base import Rule
from pmureview.rule.model import Confidence, Finding, RuleDocs, RuleMeta, Scope, Severity
from pmureview.views.context import FileContext, SeriesContext

# the object READ_ONCE()/WRITE_ONCE() access: `vcpu->arch.reset_state.reset`, `&st->flag`, ...
# `\b(READ_ONCE|WRITE_ONCE)...`, the word boundary checked behind the name (look-behinds): a pattern
# starting with \b is tried at every position, this one only where an R or a W is
_ONCE = re.compile(r"(READ_ONCE|WRITE_ONCE)(?<!\wREAD_ONCE)(?<!\wWRITE_ONCE)"
                   r"\s*\(\s*&?\s*([A-Za-z_][\w.\->\s]*?)\s*[,)]")
# where the base is searched in full mode: KVM code and its headers, besides the series' own files
_BASE_DIRS = ("arch/arm64/kvm/", "arch/arm64/include/asm/kvm", "include/kvm/", "virt/kvm/", "include/linux/kvm")
_MAX_BASE_FILES = 200
# objects being built before anybody else can see them
# user-space code (selftests, tools) shares names, not objects, with the kernel
_OTHER_WORLD = ("tools/", "Documentation/", "scripts/")
_INIT_FN = re.compile(r"(^|_)(init|create|alloc|setup|probe|new)(_|$)")


def _key(access: str) -> str | None:
    """The last two members of an access path (`a->b.c.d` -> `c.d`): one member alone is too common."""
    parts = [p for p in re.split(r"\s*(?:->|\.)\s*", access.strip()) if p]
    if len(parts) < 2 or not all(re.fullmatch(r"[A-Za-z_]\w*", p) for p in parts):
        return None
    return f"{parts[-2]}.{parts[-1]}"


def _scan(text_: str, where: str, out: dict[str, tuple[str, str]]) -> None:
    if "_ONCE" not in text_:  # most files of a tree: no regex pass over them
        return
    for m in _ONCE.finditer(text_):
        key = _key(m.group(2))
        if key is not None and key not in out:
            out[key] = (m.group(1), where)


def _series_accesses(series: SeriesContext) -> dict[str, tuple[str, str]]:
    """Fields accessed with READ_ONCE()/WRITE_ONCE() in what the series shows (every known line)."""
    def build() -> dict[str, tuple[str, str]]:
        out: dict[str, tuple[str, str]] = {}
        for view in series.all_views():
            if view.is_c and not view.path.startswith(_OTHER_WORLD):
                known, lines = view.known, view.lines
                # lines 1..m all known (full mode): the same text, joined in one call
                m = len(known)
                if m and max(known) == m <= len(lines) and min(known) == 1:
                    # every line: the view's own text (its lines are that text split), not a copy
                    _scan(view.text if m == len(lines) else "\n".join(lines[:m]), view.path, out)
                else:
                    _scan("\n".join(view.line_text(n) for n in sorted(known)), view.path, out)
        return out
    return series.memo(("missing-write-once", "series"), build)


def _base_accesses(series: SeriesContext) -> dict[str, tuple[str, str]]:
    """Full mode: the same, in the base's KVM files and the folders the series touches (one search
    per series, not one per field)."""
    def build() -> dict[str, tuple[str, str]]:
        out: dict[str, tuple[str, str]] = {}
        files = set(series.base_files_using("READ_ONCE") or ()) | set(series.base_files_using("WRITE_ONCE") or ())
        folders = tuple({v.path.rsplit("/", 1)[0] + "/" for v in series.all_views()
                         if v.is_c and not v.path.startswith(_OTHER_WORLD)})
        picked = sorted(f for f in files if f.startswith(_BASE_DIRS) or (folders and f.startswith(folders)))
        stored, where = _stored_scans(series.base)
        added = False
        for path in picked[:_MAX_BASE_FILES]:
            found = stored.get(path)
            if found is None:  # each file's own accesses, first one per field, in text order
                body = series.base_text(path)
                local: dict[str, tuple[str, str]] = {}
                if body:
                    _scan(body, path, local)
                found = stored[path] = [(key, macro) for key, (macro, _) in local.items()]
                added = True
            for key, macro in found:
                if key not in out:
                    out[key] = (macro, path)
        if added and where:
            from pmureview.cachefile import write_content

            write_content(where, stored)
        return out
    return series.memo(("missing-write-once", "base"), build)


def _stored_scans(base: str | None) -> tuple[dict[str, list[tuple[str, str]]], str | None]:
    """path -> its accesses at commit `base`, kept on disk per commit (a commit's files never
    change): every hook process of a series in a kernel tree scans the same base files."""
    if not base or not re.fullmatch(r"[0-9a-f]{40}|[0-9a-f]{64}", base):
        return {}, None
    from pmureview.cachefile import code_stamp, content_cache_file, read_marshal

    where = content_cache_file("write-once", f"{base}-{code_stamp([__file__])}")
    got = read_marshal(where)
    if not isinstance(got, dict) or not all(isinstance(v, list) for v in got.values()):
        got = {}
    return got, where


_ASSIGNMENTS = frozenset({"assignment_expression"})


class MissingWriteOnce(Rule):
    meta = RuleMeta(
        # a plain store to a member: `x->f = ...` / `x.f = ...` (the '=' may open the next line)
        evidence=(r"(?m)(?:\.|->)\s*[A-Za-z_]\w*\s*(?:=(?!=)|$)",),
        id="locking/missing-write-once",
        title="Plain store to a field accessed with READ_ONCE()/WRITE_ONCE() elsewhere",
        severity=Severity.WARNING,
        confidence=Confidence.MEDIUM,
        scope=Scope.FILE,
        uses_tree=True,
        docs=RuleDocs(
            what="Flags an added plain assignment `p->a.b = v` when the same field (matched by its "
                 "last two members, `a.b`) is read or written with READ_ONCE()/WRITE_ONCE() elsewhere: "
                 "in any line the series shows, and in full mode also in the base's KVM files "
                 "(arch/arm64/kvm, the kvm headers, virt/kvm) and the patched folder.",
            why="READ_ONCE()/WRITE_ONCE() on a field says it is accessed without a common lock. A "
                "plain store next to them can be torn, merged or re-ordered by the compiler, and it "
                "breaks the pairing reviewers check; maintainers ask for WRITE_ONCE() to match the "
                "other side.",
            example="\t/* elsewhere: WRITE_ONCE(vcpu->arch.gadget_state.pending, true); */\n"
                    "\tvcpu->arch.gadget_state.pending = false;",
            use_instead="\tWRITE_ONCE(vcpu->arch.gadget_state.pending, false);",
            known_problems="Fields are matched by name, not type: two structures with the same last "
                           "two member names are taken for one. Without a tree only the lines the "
                           "series shows are searched, so the READ_ONCE()/WRITE_ONCE() side is often "
                           "not seen. Stores in functions named *init*/*create*/*alloc*/*setup*/"
                           "*probe*/*new* (the object is not published yet) and to a local struct "
                           "(`s.f = v`) are not reported, nor anything under tools/ (selftests share "
                           "names, not objects, with the kernel); a store under a lock that every "
                           "reader also takes is.",
            references=("<87sfz7rrrv.wl-maz@kernel.org> (reset_state.reset cleared with a plain store; "
                        "WRITE_ONCE() to match the PSCI side)",
                        "Documentation/memory-barriers.txt, 'COMPILER BARRIER'"),
        ),
    )

    def check(self, ctx: FileContext) -> Iterator[Finding]:  # type: ignore[override]
        view = ctx.view
        if not view.is_c or not view.added or view.path.startswith(_OTHER_WORLD):
            return
        seen: dict[str, tuple[str, str]] | None = None
        for node in view.added_nodes(_ASSIGNMENTS):  # on added lines, not the whole file's
            op = node.child_by_field_name("operator")
            left = node.child_by_field_name("left")
            if op is None or text(op) != "=" or left is None or left.type != "field_expression":
                continue
            if view.node_line(node) not in view.added or left.has_error:
                continue
            access = text(left)
            key = _key(access)
            if key is None or re.fullmatch(r"[A-Za-z_]\w*\s*\.\s*\w+", access):
                continue  # `s.f = v`: a struct object of its own, a local copy or a static
            name = enclosing_function_name(view, view.node_line(node))
            if name is not None and _INIT_FN.search(name):
                continue
            if seen is None:
                seen = _series_accesses(ctx.series)
            hit = seen.get(key)
            if hit is None and ctx.series.full:
                hit = _base_accesses(ctx.series).get(key)
            if hit is None:
                continue
            macro, where = hit
            yield self.at_node(
                view, node,
                f"plain store to '{access}': {key} is accessed with {macro}() in {where}; "
                f"use WRITE_ONCE() here too",
                note="A field accessed with READ_ONCE()/WRITE_ONCE() is shared without a common lock; "
                     "a plain store can be torn or re-ordered by the compiler and races with the "
                     "lockless side (KCSAN reports it).",
                suggestion=f"WRITE_ONCE({access}, {text(node.child_by_field_name('right'))});")
