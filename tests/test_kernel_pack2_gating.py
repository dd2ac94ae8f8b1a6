"""Knowledge of the pack-2 gating rules: predicate classes, the sys_reg_descs[] table, ID registers."""

from __future__ import annotations

from pmureview.kernel import idregs, predicates, sysregtable
from pmureview.kernel.predicates import HOST, NONE, PER_VM, UNKNOWN, Classifier, Helpers
from pmureview.lang.c import parse, walk

HEADER = """
#define kvm_has_foo(k) (system_supports_foo() && kvm_has_feat((k), ID_AA64FOO0_EL1, FOO, IMP))
#define host_has_bar() (cpus_have_final_cap(ARM64_HAS_BAR) && has_vhe())
static inline bool ctxt_has_qux(struct kvm_cpu_context *ctxt)
{
	if (!cpus_have_final_cap(ARM64_HAS_QUX))
		return false;
	return kvm_has_feat(kern_hyp_va(ctxt_to_vcpu(ctxt)->kvm), ID_AA64QUX0_EL1, QUX, IMP);
}
"""

TABLE = """
#define ID_DESC(name) SYS_DESC(SYS_##name), .access = access_id_reg, .get_user = get_id_reg
#define ID_WRITABLE(name, mask) { ID_DESC(name), .set_user = set_id_reg, \\
	.visibility = id_visibility, .reset = kvm_read_sanitised_id_reg, .val = mask, }
#define EL2_REG(name, acc, rst, v) { SYS_DESC(SYS_##name), .access = acc, .reset = rst, \\
	.reg = name, .visibility = el2_visibility, .val = v, }

static u64 __kvm_read_sanitised_id_reg(const struct kvm_vcpu *vcpu, const struct sys_reg_desc *r)
{
	u32 id = reg_to_encoding(r);
	u64 val = read_sanitised_ftr_reg(id);

	switch (id) {
	case SYS_ID_AA64FOO0_EL1:
		val &= ~ID_AA64FOO0_EL1_QUX_MASK;
		if (!vcpu_has_nv(vcpu))
			val &= ~ID_AA64FOO0_EL1_NVX_MASK;
		break;
	case SYS_ID_AA64BAR0_EL1:
		val &= ID_AA64BAR0_EL1_A | ID_AA64BAR0_EL1_B;
		break;
	}
	return val;
}

static const struct sys_reg_desc sys_reg_descs[] = {
	ID_WRITABLE(ID_AA64FOO0_EL1, ~(ID_AA64FOO0_EL1_RES0 | ID_AA64FOO0_EL1_ZED)),
	ID_WRITABLE(ID_AA64BAR0_EL1, ID_AA64BAR0_EL1_A),
	/* a comment, with a comma */
	{ SYS_DESC(SYS_FOO_EL1), NULL, reset_unknown, FOO_EL1,
		.visibility = foo_visibility },
	{ SYS_DESC(SYS_TRAPPED_EL1), undef_access },
	EL2_REG(HCR_EL2, access_rw, reset_val, 0),
};
"""


def _cond(src: str):
    root = parse(f"void f(void) {{ if ({src}) return; }}".encode()).root_node
    return next(walk(root, {"if_statement"})).child_by_field_name("condition")


def test_classifier_basic_and_helpers() -> None:
    h = Helpers()
    h.add_text(HEADER)
    clf = Classifier(h)
    assert clf.classify(_cond("cpus_have_final_cap(ARM64_HAS_FOO)")) == HOST
    assert clf.classify(_cond("!system_supports_foo() || has_vhe()")) == HOST
    assert clf.classify(_cond("kvm_has_feat(kvm, ID_AA64FOO0_EL1, FOO, IMP)")) == PER_VM
    assert clf.classify(_cond("cpus_have_final_cap(X) && vcpu_has_nv(vcpu)")) == PER_VM
    assert clf.classify(_cond("test_bit(KVM_ARCH_FLAG_MTE_ENABLED, &kvm->arch.flags)")) == PER_VM
    assert clf.classify(_cond("kvm_has_foo(kvm)")) == PER_VM  # macro body
    assert clf.classify(_cond("host_has_bar()")) == HOST  # helper of host-only tests
    assert clf.classify(_cond("ctxt_has_qux(ctxt)")) == PER_VM  # function body, host shortcut first
    assert clf.classify(_cond("mystery(vcpu)")) == UNKNOWN
    assert clf.classify(_cond("cpus_have_final_cap(X) && mystery(vcpu)")) == UNKNOWN
    assert clf.classify(_cond("1")) == NONE


def test_path_conditions_include_early_returns() -> None:
    src = b"""unsigned int v(void)
{
	if (!cpus_have_final_cap(ARM64_HAS_FOO))
		return REG_HIDDEN;
	if (x) {
		y = 1;
	}
	return 0;
}"""
    root = parse(src).root_node
    rets = list(walk(root, {"return_statement"}))
    last = rets[-1]
    conds = predicates.path_conditions(last)
    texts = [c.text.decode() for c in conds]
    assert "(!cpus_have_final_cap(ARM64_HAS_FOO))" in texts
    assert "(x)" not in texts  # not an exit on every path
    cls, host = predicates.classify_path(Classifier(), last)
    assert cls == HOST and host


def test_table_entries_expand_macros() -> None:
    entries = {e.name: e for e in sysregtable.parse_table(TABLE)}
    foo = entries["FOO_EL1"]
    assert foo.has_storage and foo.visibility == "foo_visibility"
    assert foo.get("reset") == "reset_unknown" and foo.get("reg") == "FOO_EL1"
    assert not entries["TRAPPED_EL1"].has_storage
    assert entries["HCR_EL2"].visibility == "el2_visibility"
    assert entries["ID_AA64BAR0_EL1"].macro == "ID_WRITABLE"
    assert entries["ID_AA64BAR0_EL1"].get("get_user") == "get_id_reg"  # through ID_DESC()


def test_table_entries_from_known_runs() -> None:
    lines = TABLE.split("\n")
    start = next(i for i, ln in enumerate(lines, 1) if "ID_AA64BAR0_EL1, ID_AA64BAR0_EL1_A" in ln)
    known = frozenset(range(start - 1, start + 3))  # starts mid-entry, ends mid-entry
    text = "\n".join(ln if i in known else "" for i, ln in enumerate(lines, 1))
    names = [e.name for e in sysregtable.parse_table(text, known)]
    assert "ID_AA64BAR0_EL1" in names


def test_writable_masks_and_sanitisation() -> None:
    entries = {e.name: e for e in sysregtable.parse_table(TABLE)}
    foo = idregs.writable(entries["ID_AA64FOO0_EL1"])
    assert foo.kind == "complement" and foo.writable("QUX") and not foo.writable("ZED")
    bar = idregs.writable(entries["ID_AA64BAR0_EL1"])
    assert bar.kind == "allow" and bar.writable("A") and not bar.writable("B")
    lims = idregs.sanitisation(TABLE)
    assert lims["ID_AA64FOO0_EL1"].cased and lims["ID_AA64FOO0_EL1"].cleared == {"QUX"}  # NVX conditional
    assert lims["ID_AA64BAR0_EL1"].clears("C") and not lims["ID_AA64BAR0_EL1"].clears("A")


def test_bundled_facts_have_sources() -> None:
    data = predicates.gating_data()
    for section in ("predicates", "entry_macros", "enable_bits", "context_switch", "idregs"):
        assert data[section]["source"].startswith(("curated:", "generated from"))
    assert idregs.bundled()["ID_AA64MMFR3_EL1"].limits.allow == {"TCRX", "S1PIE", "S1POE"}
    assert "ID_WRITABLE" in sysregtable.bundled_macros()
