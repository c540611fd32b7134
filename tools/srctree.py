"""Run a source-reading tool (mypy, import-linter) on the package as it is installed.

The repository's top-level folders (``schemas/``, ``producers/``, ``consumers/``, ``dashboards/``,
``policies/``) are installed under one ``privaudit`` namespace by ``[tool.setuptools] package-dir``
in pyproject.toml. Python's import system follows that mapping (the editable install's finder), but
tools that walk source files do not: from the repository root they see a bare ``consumers``
package, or no ``privaudit.consumers`` at all. So this builds the installed layout as a tree of
links (real directories, each ``.py`` file a symbolic link to the repository's), runs the tool with
that tree first on its search paths, and rewrites the tree's paths in the tool's output back to the
repository's files::

    python tools/srctree.py mypy                 # mypy, configured in pyproject.toml
    python tools/srctree.py --in-tree lint-imports "$PWD/pyproject.toml"

``--in-tree`` runs the tool from the tree's directory, for a tool that puts its working directory
first on its import path (import-linter does): the repository's own ``privaudit/`` would hide the
tree there. Give such a tool its files as absolute paths.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
TREE = REPO / "build" / "srctree"


def build(tree: Path = TREE) -> Path:
    """The link tree of every package pyproject.toml declares; ``tree`` is made anew."""
    config = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"]
    mapping: dict[str, str] = config["package-dir"]
    if tree.exists():
        shutil.rmtree(tree)
    for package in config["packages"]:
        source = _source_dir(package, mapping)
        if not (source / "__init__.py").is_file():
            continue  # a folder of data only
        target = tree.joinpath(*package.split("."))
        target.mkdir(parents=True, exist_ok=True)
        for path in sorted(source.iterdir()):
            if path.is_file() and path.suffix in (".py", ".pyi", ".typed"):
                (target / path.name).symlink_to(path)
    return tree


def _source_dir(package: str, mapping: dict[str, str]) -> Path:
    """Where ``package`` lives in the repository: under the longest mapped ancestor."""
    parts = package.split(".")
    for i in range(len(parts), 0, -1):
        prefix = ".".join(parts[:i])
        if prefix in mapping:
            return REPO.joinpath(mapping[prefix], *parts[i:])
    return REPO.joinpath(*parts)


def main(argv: list[str]) -> int:
    in_tree = argv[:1] == ["--in-tree"]
    argv = argv[1:] if in_tree else argv
    if not argv:
        print(__doc__, file=sys.stderr)
        return 2
    tree = build()
    if os.sep in argv[0]:  # a path from here: the tool may run from the tree's directory
        argv[0] = os.path.abspath(argv[0])
    env = dict(os.environ)
    for name in ("MYPYPATH", "PYTHONPATH"):  # the tree before the editable install's finder
        env[name] = os.pathsep.join(filter(None, [str(tree), env.get(name)]))
    proc = subprocess.run(argv, cwd=tree if in_tree else REPO, env=env, capture_output=True, text=True)
    # the tree's files as the tool names them: relative to the repository, or absolute
    tree_path = re.compile("|".join(re.escape(str(root)) + r"/[\w/.-]+\.py" for root in (tree.relative_to(REPO), tree)))

    def in_repo(match: re.Match[str]) -> str:
        return os.path.relpath(os.path.realpath(REPO / match.group(0)), REPO)

    sys.stdout.write(tree_path.sub(in_repo, proc.stdout))
    sys.stderr.write(tree_path.sub(in_repo, proc.stderr))
    return proc.returncode


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
