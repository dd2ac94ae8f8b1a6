"""`check --files`: existing files reviewed as if a patch added them (like `checkpatch -f`)."""

from __future__ import annotations

from pathlib import Path

from ..errors import InputError
from .model import ChangeKind, FileChange, Hunk, HunkLine, Message, Patch, Series


def _rel(path: Path, tree: Path | None) -> str:
    p = path.resolve()
    if tree is not None and p.is_relative_to(tree.resolve()):
        return p.relative_to(tree.resolve()).as_posix()
    return path.as_posix().lstrip("/")


def files_as_series(paths: list[Path], tree: Path | None) -> Series:
    changes = []
    for path in paths:
        try:
            text = path.read_text("utf-8", "surrogateescape")
        except OSError as exc:
            raise InputError(f"{path}: cannot read: {exc.strerror or exc}") from None
        lines = text.split("\n")
        if lines and lines[-1] == "":
            lines.pop()
        rel = _rel(path, tree)
        hunk = Hunk(0, 0, 1, len(lines), "",
                    tuple(HunkLine("+", t, None, i, i) for i, t in enumerate(lines, 1)))
        changes.append(FileChange(path=rel, old_path=None, kind=ChangeKind.ADDED, hunks=(hunk,),
                                  diff_header=f"diff --git a/{rel} b/{rel}"))
    if not changes:
        raise InputError("--files: no file given")
    mail = Message(msgid="files@pmureview", subject="[PATCH] files", title="files", author_name="",
                   author_email="", date="")
    patch = Patch(number=1, mail=mail, message="", message_start=1, files=tuple(changes))
    return Series(revision=1, total=1, patches=(patch,), source="--files")
