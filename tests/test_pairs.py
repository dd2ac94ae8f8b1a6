"""The paired-call walk (analyses/pairs.py) on small C functions."""

from __future__ import annotations

import pytest

from pmureview.analyses.pairs import derive, function_leaks, table
from pmureview.lang.c import functions, parse


def leaks(src: str) -> list[tuple[str, str, str, int, int]]:
    """(function, kind, acquire family, acquire line, exit line) for every leak in `src`."""
    root = parse(src.encode()).root_node
    helpers = dict(functions(root))
    out = []
    for name, fn in functions(root):
        for lk in function_leaks(fn, helpers):
            out.append((name, lk.kind, lk.pair.family, lk.acquire_line, lk.exit_line))
    return out


def test_table_is_consistent():
    acquires, releases = table()
    assert acquires["spin_lock_irqsave"].release == {"spin_unlock_irqrestore"}
    assert acquires["mutex_trylock"].success == "try"
    assert "guard" not in acquires and "scoped_guard" not in acquires
    assert all(p.acquire & set(acquires) for ps in releases.values() for p in ps)


def test_derived_pairs():
    assert derive("kvm_pgtable_walk_begin").release == {"kvm_pgtable_walk_end"}
    assert derive("lock_all_vcpus").release == {"unlock_all_vcpus"}
    assert derive("foo_lock_irqsave").release == {"foo_unlock_irqrestore"}
    assert derive("spin_lock") is None  # in the table
    assert derive("get_user") is None


BALANCED = """
int f(struct kvm *kvm)
{
	if (!kvm)
		return -EINVAL;		/* before the lock */
	mutex_lock(&kvm->lock);
	if (busy(kvm)) {
		mutex_unlock(&kvm->lock);
		return -EBUSY;		/* after the unlock */
	}
	mutex_unlock(&kvm->lock);
	return 0;
}
"""

EARLY = """
int f(struct kvm *kvm)
{
	mutex_lock(&kvm->lock);
	if (busy(kvm))
		return -EBUSY;
	mutex_unlock(&kvm->lock);
	return 0;
}
"""


def test_balanced_is_silent():
    assert leaks(BALANCED) == []


def test_early_return_leak():
    assert leaks(EARLY) == [("f", "early-return", "mutex_lock", 4, 6)]


def test_goto_cleanup_idiom_is_silent_and_skipping_goto_is_found():
    good = """
int f(struct kvm *kvm)
{
	int ret = 0;

	spin_lock(&kvm->mmu_lock);
	if (a(kvm)) {
		ret = -EINVAL;
		goto out_unlock;
	}
	list_for_each_entry(e, &kvm->list, node) {
		if (e->bad)
			goto out_unlock;
	}
out_unlock:
	spin_unlock(&kvm->mmu_lock);
	return ret;
}
"""
    bad = """
int f(struct kvm *kvm)
{
	int ret = 0;

	spin_lock(&kvm->mmu_lock);
	if (a(kvm)) {
		ret = -EINVAL;
		goto out;
	}
	spin_unlock(&kvm->mmu_lock);
out:
	return ret;
}
"""
    assert leaks(good) == []
    assert leaks(bad) == [("f", "goto", "spin_lock", 6, 9)]


@pytest.mark.parametrize("src", [
    # trylock failure path returns without the lock
    "int f(struct kvm *k)\n{\n\tif (!mutex_trylock(&k->lock))\n\t\treturn -EBUSY;\n\tx();\n"
    "\tmutex_unlock(&k->lock);\n\treturn 0;\n}\n",
    # interruptible: non-zero means not taken
    "int f(struct kvm *k)\n{\n\tint ret = mutex_lock_interruptible(&k->lock);\n\n\tif (ret)\n\t\treturn ret;\n"
    "\tx();\n\tmutex_unlock(&k->lock);\n\treturn 0;\n}\n",
    # guard() and scoped_guard() release themselves
    "int f(struct kvm *k)\n{\n\tguard(mutex)(&k->lock);\n\tif (x())\n\t\treturn -EBUSY;\n"
    "\tscoped_guard(spinlock, &k->mmu_lock) {\n\t\tif (y())\n\t\t\treturn -EINVAL;\n\t}\n\treturn 0;\n}\n",
    # the lock is handed to the caller: never released here
    "struct s *f(struct kvm *k)\n{\n\tspin_lock(&k->mmu_lock);\n\tif (x())\n\t\treturn NULL;\n\treturn k->s;\n}\n",
    # released on some paths, held at the normal exit: the caller unlocks
    "struct s *g(struct kvm *k)\n{\n\tspin_lock(&k->mmu_lock);\n\tif (!k->s) {\n\t\tspin_unlock(&k->mmu_lock);\n"
    "\t\treturn NULL;\n\t}\n\tif (k->t)\n\t\treturn k->t;\n\treturn k->s;\n}\n",
    # annotated and named as lock helpers
    "void f(struct kvm *k)\n\t__acquires(&k->lock)\n{\n\tmutex_lock(&k->lock);\n\tif (x())\n\t\treturn;\n"
    "\tmutex_unlock(&k->lock);\n}\n",
    "bool vgic_lock_all(struct kvm *k)\n{\n\tmutex_lock(&k->lock);\n\tif (x())\n\t\treturn true;\n"
    "\tmutex_unlock(&k->lock);\n\treturn false;\n}\n",
    # released by a helper of the same file, or one whose name says it unlocks
    "static void done(struct kvm *k)\n{\n\tmutex_unlock(&k->lock);\n}\n"
    "int f(struct kvm *k)\n{\n\tmutex_lock(&k->lock);\n\tif (x()) {\n\t\tdone(k);\n\t\treturn -1;\n\t}\n"
    "\tmutex_unlock(&k->lock);\n\treturn 0;\n}\n",
    "int f(struct kvm *k)\n{\n\tmutex_lock(&k->lock);\n\tif (x()) {\n\t\tkvm_unlock_and_put(k);\n\t\treturn -1;\n\t}\n"
    "\tmutex_unlock(&k->lock);\n\treturn 0;\n}\n",
    # correlated conditions: the same test, and a flag
    "int f(struct kvm *k, bool locked)\n{\n\tif (!locked)\n\t\tspin_lock(&k->mmu_lock);\n\tx();\n"
    "\tif (!locked)\n\t\tspin_unlock(&k->mmu_lock);\n\tif (y())\n\t\treturn 1;\n\treturn 0;\n}\n",
    "int f(struct kvm *k)\n{\n\tbool unlock = false;\n\n\tif (k->x) {\n\t\tspin_lock(&k->mmu_lock);\n"
    "\t\tunlock = true;\n\t}\n\tif (y()) {\n\t\tif (unlock)\n\t\t\tspin_unlock(&k->mmu_lock);\n\t\treturn 1;\n"
    "\t}\n\tif (unlock)\n\t\tspin_unlock(&k->mmu_lock);\n\treturn 0;\n}\n",
    # drop-and-retake of a lock the caller holds
    "int f(struct kvm *k)\n{\n\tspin_unlock(&k->mmu_lock);\n\tcond_resched();\n\tspin_lock(&k->mmu_lock);\n"
    "\tif (x())\n\t\treturn -EAGAIN;\n\treturn 0;\n}\n",
    # an alias of the lock is released: not ours to judge
    "int f(struct vgic_cpu *c, struct kvm_vcpu *v)\n{\n\tspin_lock(&c->ap_list_lock);\n\tif (x())\n\t\treturn 1;\n"
    "\tspin_unlock(&v->arch.vgic_cpu.ap_list_lock);\n\treturn 0;\n}\n",
])
def test_silent(src):
    assert leaks(src) == []


def test_switch_loop_and_rcu():
    src = """
int f(struct kvm *kvm, int op)
{
	int ret;

	mutex_lock(&kvm->lock);
	switch (op) {
	case 1:
		ret = a();
		break;
	case 2:
		mutex_unlock(&kvm->lock);
		return -EINVAL;
	default:
		ret = -ENOENT;
		goto out;
	}
	if (ret)
		return ret;
out:
	mutex_unlock(&kvm->lock);
	return ret;
}

int g(struct kvm *kvm, int id)
{
	rcu_read_lock();
	list_for_each_entry_rcu(e, &kvm->list, node) {
		if (e->id == id) {
			rcu_read_unlock();
			return e->val;
		}
		if (e->bad)
			return -EIO;
	}
	rcu_read_unlock();
	return 0;
}
"""
    assert leaks(src) == [("f", "early-return", "mutex_lock", 6, 19), ("g", "early-return", "rcu_read_lock", 27, 34)]


def test_unreachable_release():
    src = "int f(void)\n{\n\tkvm_pgtable_walk_begin();\n\treturn walk();\n\tkvm_pgtable_walk_end();\n}\n"
    got = leaks(src)
    assert ("f", "unreachable-release", "kvm_pgtable_walk_begin", 3, 5) in got


def test_page_references():
    bad = """
bool f(struct kvm_memory_slot *slot, gfn_t gfn)
{
	bool writable;
	kvm_pfn_t pfn;

	pfn = __gfn_to_pfn_memslot(slot, gfn, false, NULL, true, &writable, NULL);
	if (is_error_pfn(pfn) || !writable)
		return false;
	kvm_release_pfn_clean(pfn);
	return true;
}
"""
    assert leaks(bad) == [("f", "early-return", "__gfn_to_pfn_memslot", 7, 9)]
    good = bad.replace("is_error_pfn(pfn) || !writable", "is_error_pfn(pfn)")
    assert leaks(good) == []
    handed = """
int f(struct kvm *kvm, gfn_t gfn, struct page **out)
{
	struct page *page = gfn_to_page(kvm, gfn);

	if (!page)
		return -EFAULT;
	if (check(kvm)) {
		*out = page;
		return 0;
	}
	kvm_release_page_clean(page);
	return -EINVAL;
}
"""
    assert leaks(handed) == []
    pinned = """
int f(void *va)
{
	int ret = hyp_pin_shared_mem(va, va + 1);

	if (ret)
		return ret;
	if (bad(size))
		return -EPERM;
	hyp_unpin_shared_mem(va, va + 1);
	return 0;
}
"""
    assert leaks(pinned) == [("f", "early-return", "hyp_pin_shared_mem", 4, 9)]


def test_fragments_never_raise():
    for src in ("int f(void)\n{\n\tspin_lock(&a);\n\tif (x\n", "}\n\treturn 0;\n\tmutex_unlock(&l);\n}\n",
                "void f(void)\n{\n\tgoto nowhere;\n}\n", "int f(void) { while (1) { break; continue; } }"):
        leaks(src)
