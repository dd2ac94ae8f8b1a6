"""Findings, severities and rule metadata: plain data shared by rules, selection and reporters."""

from __future__ import annotations

from enum import StrEnum

from ..record import dataclass, field


class Severity(StrEnum):
    ERROR = "error"
    WARNING = "warning"
    CHECK = "check"

    @property
    def rank(self) -> int:
        return {"error": 3, "warning": 2, "check": 1}[self.value]

    @property
    def label(self) -> str:  # checkpatch's LEVEL word
        return self.value.upper()


class Confidence(StrEnum):
    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"


class Scope(StrEnum):
    SERIES = "series"
    PATCH = "patch"
    FILE = "file"


SECTIONS = ("cover", "subject", "message", "trailers")


@dataclass(frozen=True, slots=True, kw_only=True)
class Location:
    patch: int  # 1..N; 0 = the cover letter
    path: str | None = None  # post-image path; None for subject/message/trailers/cover
    line: int | None = None  # 1-based post-image line, or line within `section`
    column: int | None = None  # 1-based
    end_line: int | None = None
    section: str | None = None  # one of SECTIONS when path is None
    mail_line: int | None = None  # 1-based line in the patch mail (`-:N` for stdin input)

    def sort_key(self) -> tuple:
        # findings not on a file line sort before file findings of the same patch
        return (self.patch, 0 if self.path is None else 1, self.path or "", self.line or 0, self.column or 0)


@dataclass(frozen=True, slots=True, kw_only=True)
class Finding:
    rule: str
    severity: Severity
    confidence: Confidence
    message: str  # one line, names the thing
    location: Location
    note: str | None = None  # the why, reused in replies
    suggestion: str | None = None
    snippet: str | None = None  # the anchored line's text (for baselines and code frames)
    origin: str = ""

    def sort_key(self) -> tuple:
        return (*self.location.sort_key(), self.rule, self.message)

    def fingerprint(self) -> str:
        """Stable across revisions: rule, path and the normalised anchored line, not the line number."""
        text = " ".join((self.snippet or self.message).split())
        raw = f"{self.rule}\0{self.location.path or self.location.section}\0{text}"
        try:  # the builtin module: hashlib loads OpenSSL first (~4 ms; only reports with fingerprints pay)
            from _sha256 import sha256
        except ImportError:  # a build without it
            from hashlib import sha256
        return sha256(raw.encode()).hexdigest()[:16]

    def to_dict(self) -> dict:
        loc = self.location
        return {
            "rule": self.rule,
            "severity": self.severity.value,
            "confidence": self.confidence.value,
            "patch": loc.patch,
            "path": loc.path,
            "line": loc.line,
            "column": loc.column,
            "section": loc.section,
            "message": self.message,
            "note": self.note,
            "suggestion": self.suggestion,
            "snippet": self.snippet,
            "fingerprint": self.fingerprint(),
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class RuleDocs:
    what: str = ""
    why: str = ""
    example: str = ""
    use_instead: str = ""
    known_problems: str = ""
    references: tuple[str, ...] = ()

    def to_dict(self) -> dict:
        return {
            "what": self.what,
            "why": self.why,
            "example": self.example,
            "use_instead": self.use_instead,
            "known_problems": self.known_problems,
            "references": list(self.references),
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class RuleMeta:
    id: str  # "<pack>/<name>", stable, never reused
    title: str
    severity: Severity
    confidence: Confidence = Confidence.HIGH
    scope: Scope = Scope.FILE
    files: tuple[str, ...] = ("*.c", "*.h")
    docs: RuleDocs = field(default_factory=RuleDocs)
    status: str = "stable"  # stable | preview
    needs_base: bool = False  # judges novelty against a base: skipped by `check --files`
    uses_tree: bool = False  # reads kernel facts or pre-images beyond the hunks
    # Cheap evidence the rule needs in the series: regexes, one of which must match the text of the
    # added or removed lines, a subject or a commit message, or the rule cannot fire and is neither
    # imported nor run (the registry keeps these in its index). Empty: always runs.
    evidence: tuple[str, ...] = ()
    origin: str = ""

    @property
    def pack(self) -> str:
        return self.id.split("/", 1)[0]

    def to_dict(self) -> dict:
        return {
            "id": self.id,
            "title": self.title,
            "severity": self.severity.value,
            "confidence": self.confidence.value,
            "scope": self.scope.value,
            "files": list(self.files),
            "status": self.status,
            "needs_base": self.needs_base,
            "uses_tree": self.uses_tree,
            "origin": self.origin,
            "docs": self.docs.to_dict(),
        }
