"""The required-shape analysis: ops tables, callbacks, weak defaults/overrides and BPF programs."""

from __future__ import annotations

import textwrap
from pathlib import Path

import yaml

from pmureview.analyses.required_shape import (
    ADDRESS,
    BPF_PROGRAM,
    OPS_TABLE,
    WEAK_DEFAULT,
    WEAK_OVERRIDE,
    definition_shape,
    program_name,
    required_elsewhere,
    required_shape,
)
from pmureview.api import Options, _open_tree, load_series
from pmureview.lang.c import walk
from pmureview.testing import build_series, git_tree
from pmureview.views.context import FULL, HUNK_ONLY, SeriesContext
from pmureview.views.image import build_views

BASE = {
    "virt/kvm/hooks.c": """\
// SPDX-License-Identifier: GPL-2.0-only
#include <linux/kvm_host.h>

bool __weak kvm_foo_wants_flush(void)
{
	return false;
}
""",
    "arch/arm64/kvm/arm.c": """\
// SPDX-License-Identifier: GPL-2.0-only
#include <linux/kvm_host.h>

int kvm_arm_init(void)
{
	return 0;
}
""",
}

FOO_C = """\
// SPDX-License-Identifier: GPL-2.0-only
#include <linux/kvm_host.h>

bool foo_is_coherent(struct kvm *kvm)
{
	return true;
}

bool foo_plain(struct kvm *kvm)
{
	return false;
}

bool foo_callback(struct kvm *kvm)
{
	return false;
}

bool foo_local(struct kvm *kvm)
{
	return true;
}

static const struct foo_ops local_ops = {
	.local = foo_local,
};

bool kvm_foo_wants_flush(void)
{
	return true;
}
"""

ARM_C = """\
// SPDX-License-Identifier: GPL-2.0-only
#include <linux/kvm_host.h>

static const struct foo_ops arm64_ops = {
	.is_coherent	= foo_is_coherent,
};

static foo_fn table[] = {
	[0] = foo_plain_other,
	foo_positional,
};

int kvm_arm_init(void)
{
	if (foo_plain(NULL) || kvm_foo_wants_flush())
		return 1;
	register_foo_cb(foo_callback, 0);
	return 0;
}
"""


def _case(tmp: Path) -> Path:
    case = tmp / "case"
    for path, text in BASE.items():
        (case / "tree" / path).parent.mkdir(parents=True, exist_ok=True)
        (case / "tree" / path).write_text(text)
    for path, text in {"arch/arm64/kvm/foo.c": FOO_C, "arch/arm64/kvm/arm.c": ARM_C}.items():
        p = case / "src" / "1" / path
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(textwrap.dedent(text))
    spec = {"author": "Ann Author <ann@example.org>", "version": 1,
            "patches": [{"subject": "KVM: arm64: Add foo", "message": "Add foo.\n\nSigned-off-by: A <a@b>"}]}
    (case / "src" / "series.yml").write_text(yaml.safe_dump(spec))
    build_series(case)
    return case


def _ctx(case: Path, mode: str, tmp: Path) -> SeriesContext:
    opts = Options()
    reader = base = None
    if mode == FULL:
        opts.tree = git_tree(case / "tree", tmp / "repo")
    series, _ = load_series([str(case / "series.mbox")], opts)
    if mode == FULL:
        reader, base = _open_tree(opts, series, hook=False)[:2]
    views, _ = build_views(series, reader)
    return SeriesContext(series=series, mode=mode, views=views, base_reader=reader, base=base)


def _kinds(ctx: SeriesContext, name: str) -> set[str]:
    return {r.kind for r in required_shape(ctx, name)}


def test_uses_that_need_the_shape(tmp_path: Path) -> None:
    ctx = _ctx(_case(tmp_path), HUNK_ONLY, tmp_path)
    assert _kinds(ctx, "foo_is_coherent") == {OPS_TABLE}
    assert _kinds(ctx, "foo_positional") == {OPS_TABLE}
    assert _kinds(ctx, "foo_plain_other") == {OPS_TABLE}
    assert _kinds(ctx, "foo_callback") == {ADDRESS}
    assert _kinds(ctx, "foo_plain") == set()  # only called: no reason
    # the ops table in its own file needs the function, but not a global symbol
    assert _kinds(ctx, "foo_local") == {OPS_TABLE}
    assert required_elsewhere(ctx, "foo_local", "arch/arm64/kvm/foo.c") == ()
    assert required_elsewhere(ctx, "foo_is_coherent", "arch/arm64/kvm/foo.c")


def test_weak_default_in_the_base_needs_a_tree(tmp_path: Path) -> None:
    case = _case(tmp_path)
    assert _kinds(_ctx(case, HUNK_ONLY, tmp_path), "kvm_foo_wants_flush") == set()
    full = _ctx(case, FULL, tmp_path)
    assert _kinds(full, "kvm_foo_wants_flush") == {WEAK_OVERRIDE}
    assert _kinds(full, "foo_plain") == set()


def test_definition_shapes() -> None:
    from pmureview.lang.c import parse

    src = ('SEC("struct_ops/ready")\nbool BPF_PROG(prog_ready, struct sock *sk)\n{\n\treturn true;\n}\n\n'
           'bool __weak hook_default(void)\n{\n\treturn false;\n}\n\n'
           'bool plain(void)\n{\n\treturn false;\n}\n')

    class _View:
        lines = src.split("\n")

        def line_text(self, n: int) -> str:
            return self.lines[n - 1] if 0 < n <= len(self.lines) else ""

        @staticmethod
        def node_line(node) -> int:
            return node.start_point[0] + 1

    root = parse(src.encode()).root_node
    fns = list(walk(root, {"function_definition"}))
    got = {program_name(fn): definition_shape(_View(), fn) for fn in fns}  # type: ignore[arg-type]
    assert got == {"prog_ready": BPF_PROGRAM, "hook_default": WEAK_DEFAULT, "plain": None}


def test_fragments_do_not_raise(tmp_path: Path) -> None:
    ctx = _ctx(_case(tmp_path), HUNK_ONLY, tmp_path)
    assert required_shape(ctx, "does_not_exist") == ()
