"""enclosing_struct(): the struct around a line, from the tree, a text scan or the hunk heading."""

from __future__ import annotations

import subprocess
from pathlib import Path

from mailfactory import patch_mail

from pmureview.analyses.enclosing import enclosing_function_name, enclosing_struct
from pmureview.series.parse import parse_series
from pmureview.views.context import FileView
from pmureview.views.image import build_views

PATH = "arch/arm64/include/asm/kvm_host.h"

BASE = """\
#ifndef __HOST_H
#define __HOST_H

struct kvm_arch {
\tunsigned long flags;
};

struct vcpu_arch {
\tu64 flags;
\tint mode;

\tstruct {
\t\tu64 stamp;
\t\tgpa_t base;
\t} steal;

\tint last;
};

#define vcpu_mode(v) ((v)->arch.mode)

static inline int vcpu_last(struct vcpu_arch *a)
{
\treturn a->last;
}

static inline int vcpu_step(struct vcpu_arch *a,
\t\t\t    int step)
{
\tint ret = 0;

\tif (a->mode)
\t\tgoto out;
\ta->last += step;
\ta->mode++;
\ta->last++;
\tret = a->last;
out:
\tret++;
\treturn ret;
}

#endif
"""


def _views(tmp_path: Path, post: str, *, full: bool) -> FileView:
    """The view of PATH after a one-patch series turning BASE into `post`, diffed by real git."""
    repo = tmp_path / "repo"
    (repo / PATH).parent.mkdir(parents=True)
    (repo / PATH).write_text(BASE)
    git = ["git", "-C", str(repo), "-c", "user.name=T", "-c", "user.email=t@example.org"]
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-qm", "base"], check=True)
    (repo / PATH).write_text(post)
    diff = subprocess.run([*git, "diff"], check=True, capture_output=True, text=True).stdout
    series, _ = parse_series([patch_mail(diff=diff).encode()])

    def read(path: str) -> str | None:
        return BASE if path == PATH else None

    views, _ = build_views(series, read if full else None)
    return views[1][0]


def _line(view: FileView, needle: str) -> int:
    return next(n for n in sorted(view.added) if needle in view.line_text(n))


def _post(old: str, new: str) -> str:
    assert old in BASE
    return BASE.replace(old, new, 1)


def test_direct_member_found_from_the_hunk_heading_in_hunk_only_mode(tmp_path: Path) -> None:
    view = _views(tmp_path, _post("\tint last;\n", "\tint last;\n\tbool fresh;\n"), full=False)
    assert view.change.hunks[0].section.startswith("struct vcpu_arch")
    enc = enclosing_struct(view, _line(view, "bool fresh"))
    assert enc is not None and (enc.name, enc.depth, enc.source) == ("vcpu_arch", 1, "section")


def test_direct_member_found_from_the_tree_in_full_mode(tmp_path: Path) -> None:
    view = _views(tmp_path, _post("\tint last;\n", "\tint last;\n\tbool fresh;\n"), full=True)
    enc = enclosing_struct(view, _line(view, "bool fresh"))
    assert enc is not None and (enc.kind, enc.name, enc.depth, enc.source) == ("struct", "vcpu_arch", 1, "tree")


def test_nested_member_has_depth_two_in_both_modes(tmp_path: Path) -> None:
    post = _post("\t\tgpa_t base;\n", "\t\tgpa_t base;\n\t\tbool valid;\n")
    for full in (False, True):
        view = _views(tmp_path / str(full), post, full=full)
        enc = enclosing_struct(view, _line(view, "bool valid"))
        assert enc is not None and (enc.name, enc.depth) == ("vcpu_arch", 2)


def test_opener_inside_the_hunk_is_read_from_the_hunk(tmp_path: Path) -> None:
    view = _views(tmp_path, _post("\tu64 flags;\n\tint mode;\n", "\tu64 flags;\n\tbool on;\n\tint mode;\n"),
                  full=False)
    enc = enclosing_struct(view, _line(view, "bool on"))
    assert enc is not None and enc.name == "vcpu_arch" and enc.depth == 1 and enc.source in ("tree", "text")


def test_line_after_the_struct_closed_is_not_in_it(tmp_path: Path) -> None:
    # git still names `struct vcpu_arch {` in the heading of a hunk after the struct's `};`
    post = _post("#define vcpu_mode(v) ((v)->arch.mode)\n",
                 "#define vcpu_mode(v) ((v)->arch.mode)\n#define vcpu_on(v) ((v)->arch.on)\n")
    for full in (False, True):
        view = _views(tmp_path / str(full), post, full=full)
        assert enclosing_struct(view, _line(view, "vcpu_on")) is None


def test_function_body_is_not_a_struct(tmp_path: Path) -> None:
    post = _post("\treturn a->last;\n", "\tbool seen = false;\n\treturn a->last;\n")
    for full in (False, True):
        view = _views(tmp_path / str(full), post, full=full)
        assert enclosing_struct(view, _line(view, "bool seen")) is None


def test_unknown_line_is_none(tmp_path: Path) -> None:
    view = _views(tmp_path, _post("\tint last;\n", "\tint last;\n\tbool fresh;\n"), full=False)
    assert enclosing_struct(view, 1) is None


def test_function_from_the_hunk_heading_and_across_a_label(tmp_path: Path) -> None:
    post = _post("\tret++;\n", "\tret++;\n\ta->mode = 0;\n")
    for full in (False, True):
        view = _views(tmp_path / str(full), post, full=full)
        line = _line(view, "a->mode = 0")
        assert enclosing_function_name(view, line) == "vcpu_step"
        assert enclosing_struct(view, line) is None
    view = _views(tmp_path / "h", post, full=False)
    assert view.change.hunks[0].section.startswith("static inline int vcpu_step")


def test_function_opened_inside_the_hunk(tmp_path: Path) -> None:
    post = _post("\tint ret = 0;\n", "\tint ret = 0;\n\tint old = a->mode;\n")
    view = _views(tmp_path, post, full=False)
    assert enclosing_function_name(view, _line(view, "int old")) == "vcpu_step"


def test_no_function_around_struct_members_or_top_level_lines(tmp_path: Path) -> None:
    post = _post("\tint last;\n", "\tint last;\n\tbool fresh;\n")
    post = post.replace("#endif\n", "#define vcpu_fresh(v) ((v)->arch.fresh)\n#endif\n")
    for full in (False, True):
        view = _views(tmp_path / str(full), post, full=full)
        assert enclosing_function_name(view, _line(view, "bool fresh")) is None
        assert enclosing_function_name(view, _line(view, "vcpu_fresh")) is None
