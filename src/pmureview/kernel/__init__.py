"""Kernel knowledge for the rules: sysreg layouts, the FGT model, capability guards.

Rules reach it as `ctx.kb` (a `knowledge.Knowledge`); `knowledge.load_knowledge()` builds it.
"""

from .knowledge import ConstRef, Knowledge, load_knowledge

__all__ = ["ConstRef", "Knowledge", "load_knowledge"]
