"""The symbols analysis: sites, uses, what existed before the series, linkage and dead definitions."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
import yaml

from pmureview.analyses.symbols import (
    ASM_OFFSET,
    DECLARE_PERCPU,
    EXPORT,
    EXTERN,
    FUNCTION,
    MACRO,
    MEMBER,
    MEMBER_NS,
    ORDINARY,
    PERCPU,
    PROTOTYPE,
    TAG,
    VARIABLE,
    strip_comments,
    symbols,
    tokens,
)
from pmureview.api import Options, _open_tree, load_series
from pmureview.testing import build_series, git_tree
from pmureview.views.context import FULL, HUNK_ONLY, SeriesContext
from pmureview.views.image import build_views

BASE_C = """\
// SPDX-License-Identifier: GPL-2.0-only
#include <linux/kvm_host.h>

static int foo_helper(int x)
{
	return x + 1;
}

int foo_global(int x)
{
	return foo_helper(x);
}

static const int *foo_table(void)
{
	return NULL;
}
"""
BASE_H = """\
/* SPDX-License-Identifier: GPL-2.0-only */
#ifndef __FOO_H
#define __FOO_H

int foo_global(int x);
static const int *foo_table(void);

#endif
"""
OTHER_C = """\
// SPDX-License-Identifier: GPL-2.0-only
#include "foo.h"

int bar(void)
{
	return foo_global(2);
}
"""


def _series(tmp: Path, patches: list[dict[str, str]], base: dict[str, str] | None = None,
            total: int | None = None) -> Path:
    """A case folder built with real git: `base` files, then one post-image dict per patch."""
    case = tmp / "case"
    tree = case / "tree"
    for path, text in (base if base is not None else
                       {"arch/arm64/kvm/foo.c": BASE_C, "arch/arm64/kvm/foo.h": BASE_H,
                        "arch/arm64/kvm/other.c": OTHER_C}).items():
        (tree / path).parent.mkdir(parents=True, exist_ok=True)
        (tree / path).write_text(text)
    spec: dict = {"author": "Ann Author <ann@example.org>", "version": 1, "patches": []}
    if total:
        spec["total"] = total
    for n, files in enumerate(patches, 1):
        for path, text in files.items():
            p = case / "src" / str(n) / path
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_text(textwrap.dedent(text))
        spec["patches"].append({"subject": f"KVM: arm64: Step {n}", "message": f"Step {n}.\n\nSigned-off-by: A <a@b>"})
    (case / "src").mkdir(parents=True, exist_ok=True)
    (case / "src" / "series.yml").write_text(yaml.safe_dump(spec))
    build_series(case)
    return case


def _ctx(case: Path, mode: str = HUNK_ONLY, tmp: Path | None = None) -> SeriesContext:
    opts = Options()
    reader = base = None
    if mode == FULL:
        assert tmp is not None
        opts.tree = git_tree(case / "tree", tmp / "repo")
    series, _ = load_series([str(case / "series.mbox")], opts)
    if mode == FULL:
        reader, base = _open_tree(opts, series, hook=False)[:2]
    views, _ = build_views(series, reader)
    return SeriesContext(series=series, mode=mode, views=views, base_reader=reader, base=base)


def _edit(text: str, old: str, new: str) -> str:
    assert text.count(old) == 1, old
    return text.replace(old, new)


# -- lexing -----------------------------------------------------------------------------------------

def test_tokens_split_name_spaces() -> None:
    got = list(tokens("x = this_cpu_ptr(&events)->host; struct events *e; e.count = EVT;"))
    assert (ORDINARY, "events") in got and (TAG, "events") in got
    assert (MEMBER_NS, "host") in got and (MEMBER_NS, "count") in got and (ORDINARY, "EVT") in got
    assert (ORDINARY, "struct") not in got


def test_strip_comments_and_strings() -> None:
    lines = ["a = 1; /* foo_unused", " * still foo_unused */ b = foo_used;", 'pr_info("foo_str");',
             "c = 2; // foo_tail"]
    code = strip_comments(lines, None)
    joined = " ".join(code)
    assert "foo_unused" not in joined and "foo_str" not in joined and "foo_tail" not in joined
    assert "foo_used" in joined


def test_hunk_block_starting_inside_a_comment() -> None:
    # a hunk-only view: lines 3-4 known, the comment opened on an unknown line
    code = strip_comments(["", "", " * mentions foo_name here", " */ x = 1;"], frozenset({3, 4}))
    assert "foo_name" not in code[2] and "x = 1" in code[3]


# -- sites -------------------------------------------------------------------------------------------

def test_sites_kinds_and_flags(tmp_path: Path) -> None:
    post = BASE_C + (
        "\n"
        "DEFINE_PER_CPU(struct foo_events, foo_events);\n"
        "static DEFINE_PER_CPU(int, foo_count);\n"
        "extern void clear_page(void *to);\n"
        "extern unsigned long foo_nr;\n"
        "unsigned long foo_mask = 3;\n"
        "\n"
        "struct foo_range {\n"
        "\tu32\tfirst;\n"
        "\tu32\tlast:4, spare:28;\n"
        "\tunion {\n"
        "\t\tu64\traw;\n"
        "\t};\n"
        "};\n"
        "\n"
        "#define FOO_DESC(a, b)\t{ .first = (a), .last = (b) }\n"
        "\n"
        "static inline bool foo_inline(void)\n"
        "{\n"
        "\treturn true;\n"
        "}\n"
        "\n"
        "int __weak foo_weak(void)\n"
        "{\n"
        "\treturn 0;\n"
        "}\n"
        "EXPORT_SYMBOL_GPL(foo_weak);\n"
        "\n"
        "void foo_fragment(void)\n"
        "{\n"
        "\tint foo_local = 1;\n"
        "}\n")
    head = _edit(BASE_H, "int foo_global(int x);\n",
                 "int foo_global(int x);\nDECLARE_PER_CPU(struct foo_events, foo_events);\n")
    case = _series(tmp_path, [{"arch/arm64/kvm/foo.c": post, "arch/arm64/kvm/foo.h": head}])
    syms = symbols(_ctx(case))
    got = {(s.name, s.kind): s for s in syms.added()}
    assert got[("foo_events", PERCPU)].static is False
    assert got[("foo_count", PERCPU)].static is True
    assert got[("foo_events", DECLARE_PERCPU)].in_header
    assert got[("clear_page", PROTOTYPE)].extern
    assert ("foo_nr", EXTERN) in got and ("foo_mask", VARIABLE) in got
    assert got[("first", MEMBER)].container == "foo_range"
    assert got[("last", MEMBER)].bitfield and got[("raw", MEMBER)].in_union
    assert got[("FOO_DESC", MACRO)].function_like
    assert got[("foo_inline", FUNCTION)].inline and got[("foo_inline", FUNCTION)].static
    assert got[("foo_weak", FUNCTION)].weak and ("foo_weak", EXPORT) in got
    assert ("foo_local", VARIABLE) not in got  # a local is no global
    assert ("foo_helper", FUNCTION) not in got  # in the base, not added


def test_asm_offsets_define(tmp_path: Path) -> None:
    base = {"arch/arm64/kernel/asm-offsets.c": "int main(void)\n{\n  DEFINE(VCPU_CTX, 0);\n  return 0;\n}\n"}
    post = "int main(void)\n{\n  DEFINE(VCPU_CTX, 0);\n  DEFINE(CPU_FOO_EL1, 8);\n  return 0;\n}\n"
    case = _series(tmp_path, [{"arch/arm64/kernel/asm-offsets.c": post}], base=base)
    syms = symbols(_ctx(case))
    assert [(s.name, s.kind) for s in syms.added()] == [("CPU_FOO_EL1", ASM_OFFSET)]
    assert [s.name for s in syms.unreferenced()] == ["CPU_FOO_EL1"]


def test_fragments_do_not_crash(tmp_path: Path) -> None:
    post = BASE_C.replace("\treturn x + 1;", "\treturn x + 1 + ((;\n\t}} static ) int (")
    case = _series(tmp_path, [{"arch/arm64/kvm/foo.c": post}])
    syms = symbols(_ctx(case))
    list(syms.added())
    assert syms.file_local_globals() == [] or isinstance(syms.file_local_globals(), list)
    assert isinstance(syms.unreferenced(), list)


# -- uses ---------------------------------------------------------------------------------------------

def test_uses_include_assembly_and_nvhe_aliases(tmp_path: Path) -> None:
    asm = "SYM_FUNC_START(__foo_enter)\n\tbl\tfoo_panic\n\tadr_l\tx0, __kvm_nvhe_foo_data\nSYM_FUNC_END(__foo_enter)\n"
    post = BASE_C + "\nint foo_data;\n\nvoid foo_panic(void)\n{\n}\n"
    case = _series(tmp_path, [{"arch/arm64/kvm/foo.c": post, "arch/arm64/kvm/hyp/foo.S": asm}])
    syms = symbols(_ctx(case))
    assert [u.path for u in syms.uses("foo_panic")] == ["arch/arm64/kvm/hyp/foo.S"]
    assert [u.asm for u in syms.uses("foo_data")] == [True]
    assert syms.uses("foo_global") == [] or all(u.path.endswith(".c") for u in syms.uses("foo_global"))


def test_pasted_names(tmp_path: Path) -> None:
    post = BASE_C + "\n#define FOO_DESC(kind)\tFOO_DESC_##kind\n\nint foo_x = FOO_DESC(ONE);\n"
    case = _series(tmp_path, [{"arch/arm64/kvm/foo.c": post}])
    syms = symbols(_ctx(case))
    assert syms.pasted("FOO_DESC_ONE") == ["arch/arm64/kvm/foo.c"]
    assert syms.pasted("FOO_DESC_TWO") == []


# -- before the series --------------------------------------------------------------------------------

def test_existed_hunk_only_and_full(tmp_path: Path) -> None:
    filler = "".join(f"\nstatic int pad{i}(void)\n{{\n\treturn {i};\n}}\n" for i in range(8))
    base = {"arch/arm64/kvm/foo.c": BASE_C + filler}
    post = BASE_C + filler + "\nvoid foo_new_call(int x)\n{\n\tpad7();\n}\n"
    case = _series(tmp_path, [{"arch/arm64/kvm/foo.c": post}], base=base)
    hunk = symbols(_ctx(case))
    assert hunk.existed("pad7") is True  # the hunk's context shows it
    assert hunk.existed("foo_new_call") is None  # unknown without a base
    assert hunk.existed("foo_table") is None  # in the base, but the hunks do not show it
    full = symbols(_ctx(case, FULL, tmp_path))
    assert full.existed("foo_new_call") is False
    assert full.existed("foo_table") is True


def test_lines_an_earlier_patch_added_are_not_the_base(tmp_path: Path) -> None:
    p1 = BASE_C + "\nint foo_later(void)\n{\n\treturn 0;\n}\n"
    p2 = p1.replace("\treturn 0;\n}\n", "\treturn 1;\n}\n")
    case = _series(tmp_path, [{"arch/arm64/kvm/foo.c": p1}, {"arch/arm64/kvm/foo.c": p2}])
    syms = symbols(_ctx(case))
    assert syms.pre_image_paths("foo_later") == set()


def test_was_static(tmp_path: Path) -> None:
    post = BASE_C.replace("static const int *foo_table(void)", "const int *foo_table(struct kvm *kvm)")
    head = BASE_H.replace("static const int *foo_table(void);", "const int *foo_table(struct kvm *kvm);")
    case = _series(tmp_path, [{"arch/arm64/kvm/foo.c": post, "arch/arm64/kvm/foo.h": head}])
    syms = symbols(_ctx(case))
    assert syms.was_static("foo_table") == {"arch/arm64/kvm/foo.c", "arch/arm64/kvm/foo.h"}


# -- linkage --------------------------------------------------------------------------------------------

def _locals(case: Path, mode: str = HUNK_ONLY, tmp: Path | None = None) -> dict[str, str]:
    return {g.name: g.evidence for g in symbols(_ctx(case, mode, tmp)).file_local_globals()}


def test_new_function_without_prototype(tmp_path: Path) -> None:
    post = _edit(BASE_C, "\treturn foo_helper(x);", "\treturn foo_helper(x) + foo_fresh();")
    post += "\nint foo_fresh(void)\n{\n\treturn 0;\n}\n"
    case = _series(tmp_path, [{"arch/arm64/kvm/foo.c": post}])
    assert _locals(case) == {"foo_fresh": "new"}
    assert _locals(case, FULL, tmp_path) == {"foo_fresh": "new"}


def test_user_in_another_file_or_a_prototype(tmp_path: Path) -> None:
    post = _edit(BASE_C, "\treturn foo_helper(x);", "\treturn foo_helper(x) + foo_fresh();")
    post += "\nint foo_fresh(void)\n{\n\treturn 0;\n}\n"
    other = _edit(OTHER_C, "foo_global(2);", "foo_global(2) + foo_fresh();")
    head = _edit(BASE_H, "int foo_global(int x);\n", "int foo_global(int x);\nint foo_fresh(void);\n")
    case = _series(tmp_path, [{"arch/arm64/kvm/foo.c": post, "arch/arm64/kvm/foo.h": head},
                              {"arch/arm64/kvm/other.c": other}])
    assert _locals(case) == {}


def test_declared_in_header_only_used_locally(tmp_path: Path) -> None:
    post = _edit(BASE_C, "\treturn foo_helper(x);", "\treturn foo_helper(x) + foo_fresh();")
    post += "\nint foo_fresh(void)\n{\n\treturn 0;\n}\n"
    head = _edit(BASE_H, "int foo_global(int x);\n", "int foo_global(int x);\nint foo_fresh(void);\n")
    case = _series(tmp_path, [{"arch/arm64/kvm/foo.c": post, "arch/arm64/kvm/foo.h": head}])
    assert _locals(case) == {"foo_fresh": "declared"}


def test_made_non_static(tmp_path: Path) -> None:
    post = BASE_C.replace("static const int *foo_table(void)", "const int *foo_table(void)")
    post = _edit(post, "\treturn foo_helper(x);", "\treturn foo_helper(x) + !foo_table();")
    head = BASE_H.replace("static const int *foo_table(void);", "const int *foo_table(void);")
    case = _series(tmp_path, [{"arch/arm64/kvm/foo.c": post, "arch/arm64/kvm/foo.h": head}])
    assert _locals(case) == {"foo_table": "made-non-static"}


def test_base_users_in_full_mode(tmp_path: Path) -> None:
    # foo_global() is used by other.c at the base: never file-local; in hunk-only mode not judged
    post = _edit(BASE_C, "\treturn foo_helper(x);", "\treturn foo_helper(x + 1);")
    post = post.replace("static const int *foo_table(void)\n{\n\treturn NULL;",
                        "static const int *foo_table(void)\n{\n\treturn foo_global(0) ? NULL : NULL;")
    case = _series(tmp_path, [{"arch/arm64/kvm/foo.c": post}])
    assert _locals(case) == {}
    assert _locals(case, FULL, tmp_path) == {}


def test_full_mode_global_whose_last_outside_user_goes(tmp_path: Path) -> None:
    other = _edit(OTHER_C, "foo_global(2);", "2;")
    post = _edit(BASE_C, "\treturn NULL;", "\treturn foo_global(3) ? NULL : NULL;")
    case = _series(tmp_path, [{"arch/arm64/kvm/foo.c": post, "arch/arm64/kvm/other.c": other}])
    assert _locals(case) == {}  # hunk-only: the rest of the tree is unknown
    assert _locals(case, FULL, tmp_path) == {"foo_global": "base"}


# -- dead definitions -----------------------------------------------------------------------------------

def test_unreferenced_member_and_macro(tmp_path: Path) -> None:
    post = BASE_C + (
        "\n"
        "#define FOO_PAIR(a, b)\t{ (a), (b) }\n"
        "\n"
        "struct foo_pair {\n"
        "\tint\tfirst;\n"
        "\tint\tsecond;\n"
        "\tint\tthird;\n"
        "};\n"
        "\n"
        "static struct foo_pair foo_pairs[] = { { .first = 1 } };\n"
        "\n"
        "int foo_second(void)\n"
        "{\n"
        "\treturn foo_pairs[0].second;\n"
        "}\n")
    case = _series(tmp_path, [{"arch/arm64/kvm/foo.c": post}])
    syms = symbols(_ctx(case))
    got = {s.name for s in syms.unreferenced()}
    assert got == {"FOO_PAIR", "third"}
    third = next(s for s in syms.unreferenced() if s.name == "third")
    assert syms.container_used(third)


def test_memo_per_run(tmp_path: Path) -> None:
    case = _series(tmp_path, [{"arch/arm64/kvm/foo.c": BASE_C + "\n"}])
    ctx = _ctx(case)
    assert symbols(ctx) is symbols(ctx)


@pytest.mark.parametrize("missing", [True, False])
def test_complete(tmp_path: Path, missing: bool) -> None:
    case = _series(tmp_path, [{"arch/arm64/kvm/foo.c": BASE_C + "\n"}], total=2 if missing else None)
    syms = symbols(_ctx(case))
    assert syms.complete() is (not missing)
