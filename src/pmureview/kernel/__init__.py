"""Kernel knowledge for the rules: sysreg layouts, the FGT model, capability guards.

Rules reach it as `ctx.kb` (a `knowledge.Knowledge`); `knowledge.load_knowledge()` builds it. The
names below load on first use: a rule that only needs `kernel.header_stubs` must not pay for the
whole knowledge base (sysreg, FGT, guards: ~9 ms of a hook run's imports).
"""

from __future__ import annotations

from typing import Any

__all__ = ["ConstRef", "Knowledge", "load_knowledge"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from . import knowledge

        return getattr(knowledge, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
