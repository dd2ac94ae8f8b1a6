"""The hook paths import only what they use (issue 15): one process per patch pays for every import.

Run as git runs the hook (`python -m pmureview hook sendemail-validate FILE` from a folder that is
not a kernel tree, no config), twice with one cache folder: the first run fills the caches (plugin
scan, rule index, compiled regexes), the second is what an author pays on every later patch. The
cache folder is created inside the current folder by the first run, as `git format-patch` adds files
to the kernel tree between sends: the plugin scan's cache must survive that.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from mailfactory import patch_mail, simple_diff

# modules a one-patch review never needs: the CLI stack, the email package (format-patch mails are
# read by series/rfc822), the config parser without a config, the entry-point scan once cached, git,
# tracebacks of failing rules, content digests, tree_sitter_c's query files (importlib.resources),
# the dataclasses machinery and the inspect it imports (the model classes are pmureview.record's)
# pathlib (paths are str on the hook paths: pathlib pulls in urllib.parse and ipaddress, ~4 ms) and
# datetime's pure-Python implementation (pmureview.clock takes the C module's classes)
FORBIDDEN = ("typer", "rich", "click", "email.parser", "email.feedparser", "email.utils", "tomllib",
             "importlib.metadata", "subprocess", "yaml", "traceback", "textwrap",
             "hashlib", "importlib.resources", "tempfile", "dataclasses", "inspect", "pathlib", "datetime")
# the patch below reaches doc/unknown-identifier (a KVM_ word): it must not import git machinery either

PROBE = """
import sys
from pmureview.entry import main
rc = main(sys.argv[1:])
print("MODULES", " ".join(sorted(sys.modules)))
sys.exit(rc)
"""


def _run(tmp: Path, *args: str, stdin: bytes | None = None) -> set[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GIT_", "PMUREVIEW_"))}
    env["XDG_CACHE_HOME"] = str(tmp / "cache")
    r = subprocess.run([sys.executable, "-c", PROBE, *args], cwd=tmp, env=env, input=stdin,
                       capture_output=True, timeout=120)
    assert r.returncode in (0, 1), r.stderr.decode()
    line = next(ln for ln in r.stdout.decode().splitlines() if ln.startswith("MODULES "))
    return set(line.split()[1:])


@pytest.fixture
def patch_file(tmp_path: Path) -> Path:
    diff = simple_diff(added=("\tif (ret)", "\t\treturn -EINVAL;", "\tmask = A_BIT", "\t\t| B_BIT;",
                              "\tr = KVM_CAP_ARM_FOO;"))
    p = tmp_path / "0001-foo.patch"
    p.write_text("From 0123456789abcdef0123456789abcdef01234567 Mon Sep 17 00:00:00 2001\n"
                 + patch_mail(subject="[PATCH 1/2] KVM: arm64: Do a thing", diff=diff))
    return p


def test_sendemail_validate_imports_only_what_it_uses(tmp_path: Path, patch_file: Path) -> None:
    _run(tmp_path, "hook", "sendemail-validate", str(patch_file))
    loaded = _run(tmp_path, "hook", "sendemail-validate", str(patch_file))
    assert "pmureview.engine.runner" in loaded  # the patch was reviewed, not skipped
    assert sorted(m for m in loaded if m.split(".")[0] in FORBIDDEN or m in FORBIDDEN) == []
    # pattern rules ran on ast-grep's extension module, without the package's TypedDict declarations
    assert "ast_grep_py.ast_grep_py" in loaded
    assert "ast_grep_py" not in loaded


def test_b4_check_imports_only_what_it_uses(tmp_path: Path, patch_file: Path) -> None:
    data = patch_file.read_bytes()
    _run(tmp_path, "b4-check", stdin=data)
    loaded = _run(tmp_path, "b4-check", stdin=data)
    assert "pmureview.engine.runner" in loaded
    assert sorted(m for m in loaded if m.split(".")[0] in FORBIDDEN or m in FORBIDDEN) == []


def test_ast_grep_extension_loaded_alone_is_the_packages_own() -> None:
    """sg_root() loads only the extension; a later `import ast_grep_py` must reuse it (a PyO3 module
    initialised twice raises ImportError) and both give the same SgRoot, which matches as usual."""
    probe = (
        "import sys\n"
        "from pmureview.lang.pattern import sg_root\n"
        "S = sg_root()\n"
        "assert 'ast_grep_py' not in sys.modules\n"
        "import ast_grep_py\n"
        "assert ast_grep_py.SgRoot is S and sg_root() is S\n"
        "m = S('int f(void)\\n{\\n\\treturn 1;\\n}\\n', 'c').root().find(pattern='return $A;')\n"
        "print(m.get_match('A').text(), m.range().start.line)\n"
    )
    r = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["1", "2"]
