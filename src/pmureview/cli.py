"""The typer app: parse options, call api.review, render, map errors to exit codes (0/1/2)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from . import __version__
from .checkcmd import Format, Level
from .checkcmd import error_line as _err
from .errors import PmuError, UsageError

app = typer.Typer(add_completion=False, no_args_is_help=True, rich_markup_mode=None,
                  context_settings={"help_option_names": ["-h", "--help"]},
                  help="Review Linux kernel patch series (KVM/arm64 FGT and PMU rule packs).")
rules_app = typer.Typer(no_args_is_help=True, help="List, show and test rules.")
hook_app = typer.Typer(no_args_is_help=True, help="Pre-send hooks for git send-email.")
kb_app = typer.Typer(no_args_is_help=True, help="The bundled kernel-knowledge snapshot.")
app.add_typer(rules_app, name="rules")
app.add_typer(hook_app, name="hook")
app.add_typer(kb_app, name="kb")


def _version(value: bool) -> None:
    if value:
        print(f"pmureview {__version__}")
        raise typer.Exit(0)


@app.callback()
def _main(version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                                help="Print the version and exit.")] = False) -> None:
    pass


@app.command()
def check(
    sources: Annotated[list[str] | None, typer.Argument(
        help="Message-ID / lore URL (fetched with b4), mbox, maildir, folder of .patch/.eml, "
             "patch files, or - for stdin.", show_default=False)] = None,
    tree: Annotated[Path | None, typer.Option(help="A kernel git checkout or plain folder: full mode "
                                                   "(default: config `tree`, else the kernel tree here).")] = None,
    no_tree: Annotated[bool, typer.Option("--no-tree", help="Hunk-only: no tree, not even one found "
                                                            "here or in the config.")] = False,
    base: Annotated[str | None, typer.Option(help="Base commit in --tree (default: base-commit:, "
                                                  "blob ids, HEAD).")] = None,
    revision: Annotated[int | None, typer.Option(help="Review revision N (default: the latest).")] = None,
    rev_range: Annotated[str | None, typer.Option("--range", help="Review the commits A..B of the "
                                                                  "repository (--tree or the current one).")] = None,
    files: Annotated[bool, typer.Option("--files", help="Review existing files as if newly added.")] = False,
    midmask: Annotated[str | None, typer.Option(help="public-inbox URL with %s for the msgid.")] = None,
    fetch_timeout: Annotated[float | None, typer.Option(help="Seconds b4 may take (default 60).")] = None,
    select: Annotated[list[str] | None, typer.Option(help="Only these rules/packs (comma-separated).")] = None,
    ignore: Annotated[list[str] | None, typer.Option(help="Skip these rules/packs.")] = None,
    fail_on: Annotated[Level | None, typer.Option(help="Exit 1 at or above this level (default warning).")] = None,
    strict: Annotated[bool | None, typer.Option("--strict", help="Show check-level findings.")] = None,
    preview: Annotated[bool | None, typer.Option("--preview", help="Run preview rules too.")] = None,
    cocci: Annotated[bool | None, typer.Option("--cocci", help="Also run the tree's scripts/coccinelle "
                                                               "(report mode; needs --tree and spatch).")] = None,
    rules_dir: Annotated[list[Path] | None, typer.Option(help="Extra rule folders (<pack>/<name>.py|.yml).")] = None,
    config: Annotated[Path | None, typer.Option(help="Config file (default .pmureview.toml / pyproject).")] = None,
    baseline: Annotated[Path | None, typer.Option(help="Ignore findings whose fingerprint is in FILE.")] = None,
    write_baseline: Annotated[Path | None, typer.Option(help="Write the findings' fingerprints to FILE.")] = None,
    fmt: Annotated[Format, typer.Option("--format", help="Output format.")] = Format.terminal,
    quiet: Annotated[bool, typer.Option("-q", "--quiet", help="Only the findings.")] = False,
    reply_dir: Annotated[Path | None, typer.Option(help="Write one reply .eml per patch with findings.")] = None,
    sender: Annotated[str | None, typer.Option("--from", help="From: of the replies.")] = None,
    signature: Annotated[str | None, typer.Option(help="Signature for the replies.")] = None,
    deterministic: Annotated[bool, typer.Option(help="Derive reply Message-ID/Date from the input.")] = False,
    since: Annotated[str | None, typer.Option(help="The previous posting (msgid, URL, mbox, folder) with its "
                                                   "review replies: statuses new/carried/resolved.")] = None,
    fail_on_new: Annotated[bool, typer.Option("--fail-on-new", help="Only findings new since the previous "
                                                                   "posting count toward --fail-on.")] = False,
) -> None:
    """Review a series and report findings."""
    from .checkcmd import run_check

    raise typer.Exit(run_check(
        sources=sources, tree=tree, no_tree=no_tree, base=base, revision=revision, rev_range=rev_range,
        files=files, midmask=midmask, fetch_timeout=fetch_timeout, select=select, ignore=ignore,
        fail_on=fail_on, strict=strict, preview=preview, cocci=cocci, rules_dir=rules_dir, config=config,
        baseline=baseline, write_baseline=write_baseline, fmt=fmt, quiet=quiet, reply_dir=reply_dir,
        sender=sender, signature=signature, deterministic=deterministic, since=since, fail_on_new=fail_on_new))


@rules_app.command("list")
def rules_list(rules_dir: Annotated[list[Path] | None, typer.Option(help="Extra rule folders.")] = None) -> None:
    """Id, severity and title of every rule; load problems are errors."""
    from .engine.registry import load_registry

    reg = load_registry(rules_dir or ())
    from rich.console import Console
    from rich.text import Text

    con = Console(highlight=False, soft_wrap=True)
    for r in reg.sorted():
        m = r.meta
        con.print(Text(f"{m.id:45} {m.severity.value:8} {m.title}"
                       + ("  [preview]" if m.status == "preview" else "")), markup=False)
    for p in reg.problems:
        _err(f"{p.origin}: {p.message}")
    raise typer.Exit(2 if reg.problems else 0)


@rules_app.command("show")
def rules_show(rule_id: str, rules_dir: Annotated[list[Path] | None, typer.Option()] = None) -> None:
    """The docs of one rule: what / why / example / use instead / known problems / references."""
    from .engine.registry import load_registry
    from .engine.ruledocs import render_markdown

    reg = load_registry(rules_dir or ())
    rule = reg.rules.get(rule_id)
    if rule is None:
        raise UsageError(f"no rule {rule_id!r} (see `pmureview rules list`)")
    sys.stdout.write(render_markdown(rule.meta))


@rules_app.command("docs")
def rules_docs(out: Annotated[Path, typer.Option(help="Folder for <pack>/<name>.md files.")] = Path("docs/rules"),
               rules_dir: Annotated[list[Path] | None, typer.Option()] = None) -> None:
    """Write every rule's docs as Markdown (docs/rules/<pack>/<name>.md) and an index."""
    from .engine.registry import load_registry
    from .engine.ruledocs import render_markdown

    reg = load_registry(rules_dir or (), plugins=False)
    index = ["# Rules", "", "| id | severity | title |", "|---|---|---|"]
    for r in reg.sorted():
        target = out / f"{r.meta.id}.md"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(render_markdown(r.meta), "utf-8")
        index.append(f"| [{r.meta.id}]({r.meta.id}.md) | {r.meta.severity.value} | {r.meta.title} |")
    (out / "README.md").write_text("\n".join(index) + "\n", "utf-8")
    print(f"wrote {len(reg.rules)} rule pages to {out}")


@rules_app.command("test")
def rules_test(folder: Path, rules_dir: Annotated[list[Path] | None, typer.Option()] = None) -> None:
    """Run the fixture harness over FOLDER (<rule-id>/bad-*|good-*/series.mbox + expected.yml)."""
    from .testing import discover_cases, run_case

    cases = discover_cases(folder)
    if not cases:
        raise UsageError(f"{folder}: no fixture cases (<pack>/<name>/bad-*|good-*/series.mbox)")
    failed = 0
    for case in cases:
        for mode in case.modes():
            problems = run_case(case, mode=mode, rules_dirs=tuple(rules_dir or ()))
            status = "ok" if not problems else "FAIL"
            failed += bool(problems)
            print(f"{status:4} {case.name} [{mode}]")
            for p in problems:
                print(f"     {p}")
    print(f"{sum(len(c.modes()) for c in cases) - failed} passed, {failed} failed")
    raise typer.Exit(1 if failed else 0)


@hook_app.command("install")
def hook_install(force: Annotated[bool, typer.Option("--force", help="Replace a foreign hook.")] = False,
                 repo: Annotated[Path | None, typer.Option(help="The repository (default: here).")] = None,
                 fail_on: Annotated[Level | None, typer.Option(help="Block at or above (default error).")] = None,
                 ) -> None:
    """Install the sendemail-validate hook (honours core.hooksPath)."""
    from .hooks.sendemail import install

    kw = {"fail_on": fail_on.value} if fail_on else {}
    path = install(repo, force=force, **kw)
    print(f"installed {path}")


@hook_app.command("uninstall")
def hook_uninstall(repo: Annotated[Path | None, typer.Option()] = None) -> None:
    """Remove the sendemail-validate hook pmureview installed."""
    from .hooks.sendemail import uninstall

    path = uninstall(repo)
    print(f"removed {path}" if path else "no pmureview hook installed")


@kb_app.command("build")
def kb_build(tree: Annotated[Path, typer.Option(help="A kernel tree (git or plain folder).")],
             out: Annotated[Path | None, typer.Option(help="Where to write (default: the bundled file).")] = None,
             ref: Annotated[str | None, typer.Option(help="Kernel version or commit to record when the tree "
                                                          "cannot tell.")] = None,
             kernel_version: Annotated[str | None, typer.Option(help="The release the facts are dated with "
                                                                     "(vX.Y; default: the tree's Makefile).")] = None,
             release_date: Annotated[str | None, typer.Option(help="That release's date, YYYY-MM-DD (default: "
                                                                   "the git tag's, else the last commit's).")] = None,
             stamp: Annotated[list[Path] | None, typer.Option(help="Only date this existing bundled JSON file "
                                                                   "with the tree's release (repeatable).")] = None,
             ) -> None:
    """Regenerate the knowledge snapshot from a kernel tree (or, with --stamp, date a bundled file)."""
    from .kernel.build import main as kb_main

    argv = ["--tree", str(tree), *(["--out", str(out)] if out else []), *(["--ref", ref] if ref else []),
            *(["--kernel-version", kernel_version] if kernel_version else []),
            *(["--release-date", release_date] if release_date else [])]
    for f in stamp or ():
        argv += ["--stamp", str(f)]
    raise typer.Exit(kb_main(argv))


def run(argv: list[str]) -> int:
    """Run the app; PmuError -> one line + exit 2; anything unexpected -> one line + exit 2."""
    try:
        rv = app(args=argv, prog_name="pmureview", standalone_mode=False)
        return rv if isinstance(rv, int) else 0
    except typer.Exit as exc:
        return int(exc.exit_code or 0)
    except PmuError as exc:
        _err(str(exc))
        return exc.exit_code
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        # typer vendors click: recognise its exceptions by shape, not by import
        if type(exc).__name__ == "Exit":
            return int(getattr(exc, "exit_code", 0) or 0)
        if type(exc).__name__ == "Abort":
            return 130
        if hasattr(exc, "show") and hasattr(exc, "exit_code"):
            exc.show()
            return 2
        _err(f"internal error: {type(exc).__name__}: {exc}")
        return 2
