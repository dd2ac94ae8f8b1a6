"""The paired calls (acquire -> release) the pairs analysis knows: one family per line.

Columns: kind key success | acquire names | release names (`@name` = a release list defined above).

- kind: what the resource is (the rules pick kinds: `lock`, `rcu`, `preempt`, `irq`, `vcpu` are
  locking; `page`, `pfn` are page references; `ref`, `alloc` are tracked but reported by nobody yet).
- key: which argument names the resource (matched against the release's arguments by text):
  a number is an argument index, `-` means none (rcu_read_lock()), `ret` means the value the
  acquire returns, as assigned to a variable (`pfn = gfn_to_pfn(...)`).
- success: `always` (void), `try` (non-zero = acquired), `zero` (0 = acquired, else an errno),
  `value` (the returned pointer/pfn/count says whether it worked; failure tests on it are understood).

`guard()` / `scoped_guard()` (cleanup.h) release themselves and are deliberately absent.
Names ending in _lock/_unlock or _begin/_end that are not listed are paired by name (pairs.derive).
"""

PAIRS = r"""
@page_rel = kvm_release_page_clean kvm_release_page_dirty kvm_release_page_unused put_page
@pfn_rel = kvm_release_pfn_clean kvm_release_pfn_dirty kvm_release_pfn
@unpin = unpin_user_pages unpin_user_page unpin_user_pages_dirty_lock
@gup_rel = put_page release_pages kvm_release_page_clean kvm_release_page_dirty

lock    0   always | spin_lock spin_lock_bh spin_lock_irq spin_lock_nested | spin_unlock spin_unlock_bh spin_unlock_irq
lock    0   always | spin_lock_irqsave spin_lock_irqsave_nested | spin_unlock_irqrestore
lock    0   try    | spin_trylock spin_trylock_bh spin_trylock_irq | spin_unlock spin_unlock_bh spin_unlock_irq
lock    0   always | raw_spin_lock raw_spin_lock_bh | raw_spin_unlock raw_spin_unlock_bh raw_spin_unlock_irq
lock    0   always | raw_spin_lock_irq raw_spin_lock_nested | raw_spin_unlock raw_spin_unlock_bh raw_spin_unlock_irq
lock    0   always | raw_spin_lock_irqsave raw_spin_lock_irqsave_nested | raw_spin_unlock_irqrestore
lock    0   try    | raw_spin_trylock | raw_spin_unlock
lock    0   always | arch_spin_lock | arch_spin_unlock
lock    0   always | hyp_spin_lock | hyp_spin_unlock
lock    0   always | mutex_lock mutex_lock_nested mutex_lock_io | mutex_unlock
lock    0   zero   | mutex_lock_interruptible mutex_lock_killable mutex_lock_interruptible_nested | mutex_unlock
lock    0   try    | mutex_trylock | mutex_unlock
lock    0   always | read_lock read_lock_bh read_lock_irq | read_unlock read_unlock_bh read_unlock_irq
lock    0   always | read_lock_irqsave | read_unlock_irqrestore
lock    0   try    | read_trylock | read_unlock
lock    0   always | write_lock write_lock_bh write_lock_irq | write_unlock write_unlock_bh write_unlock_irq
lock    0   always | write_lock_irqsave | write_unlock_irqrestore
lock    0   try    | write_trylock | write_unlock
lock    0   always | down_read down_read_nested | up_read
lock    0   zero   | down_read_interruptible down_read_killable | up_read
lock    0   try    | down_read_trylock | up_read
lock    0   always | down_write down_write_nested | up_write downgrade_write
lock    0   zero   | down_write_killable | up_write downgrade_write
lock    0   try    | down_write_trylock | up_write downgrade_write
lock    0   always | down | up
lock    0   zero   | down_interruptible down_killable down_trylock | up
lock    0   always | mmap_read_lock | mmap_read_unlock
lock    0   zero   | mmap_read_lock_killable | mmap_read_unlock
lock    0   try    | mmap_read_trylock | mmap_read_unlock
lock    0   always | mmap_write_lock | mmap_write_unlock mmap_write_downgrade
lock    0   zero   | mmap_write_lock_killable | mmap_write_unlock mmap_write_downgrade
lock    0   always | KVM_MMU_LOCK | KVM_MMU_UNLOCK
rcu     -   always | rcu_read_lock | rcu_read_unlock
rcu     -   always | rcu_read_lock_bh | rcu_read_unlock_bh
rcu     -   always | rcu_read_lock_sched | rcu_read_unlock_sched
rcu     0   always | srcu_read_lock | srcu_read_unlock
preempt -   always | preempt_disable | preempt_enable preempt_enable_no_resched
preempt -   always | preempt_disable_notrace | preempt_enable_notrace
preempt -   always | get_cpu | put_cpu
preempt -   always | migrate_disable | migrate_enable
irq     -   always | local_irq_disable | local_irq_enable
irq     0   always | local_irq_save | local_irq_restore
irq     -   always | local_bh_disable | local_bh_enable
vcpu    0   always | vcpu_load | vcpu_put
ref     0   always | kvm_get_kvm | kvm_put_kvm kvm_put_kvm_no_destroy
ref     0   try    | kvm_get_kvm_safe | kvm_put_kvm kvm_put_kvm_no_destroy
page    0   always | get_page | put_page
page    0   try    | get_page_unless_zero | put_page
page    0   zero   | hyp_pin_shared_mem | hyp_unpin_shared_mem
page    ret value  | gfn_to_page kvm_vcpu_gfn_to_page | @page_rel
pfn     ret value  | gfn_to_pfn gfn_to_pfn_prot gfn_to_pfn_memslot gfn_to_pfn_memslot_atomic | @pfn_rel
pfn     ret value  | __gfn_to_pfn_memslot kvm_vcpu_gfn_to_pfn kvm_vcpu_gfn_to_pfn_atomic hva_to_pfn | @pfn_rel
pfn     4   value  | kvm_faultin_pfn | kvm_release_faultin_page @page_rel
page    3   value  | pin_user_pages_fast pin_user_pages | @unpin
page    2   value  | pin_user_pages_unlocked | @unpin
page    4   value  | pin_user_pages_remote | @unpin
page    3   value  | get_user_pages_fast get_user_pages | @gup_rel
page    2   value  | get_user_pages_unlocked | @gup_rel
page    4   value  | get_user_pages_remote | @gup_rel
alloc   ret value  | kmalloc kzalloc kcalloc kmalloc_array kmemdup kstrdup | kfree kvfree kfree_sensitive
alloc   ret value  | kvmalloc kvzalloc kvcalloc kvmalloc_array | kfree kvfree kfree_sensitive
alloc   ret value  | vmalloc vzalloc | vfree kvfree
"""
