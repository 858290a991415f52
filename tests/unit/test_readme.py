"""README and docs claims a new user can check: links stay inside the repository, the defaults
block is the real defaults, and the `--json` claim matches the commands."""

from __future__ import annotations

import re
from pathlib import Path

import typer
import yaml

from mlops_cli.cli import DEFAULT_ENV, app
from mlops_cli.config import DEFAULT_ENV as CONFIG_DEFAULT_ENV
from mlops_cli.config import Settings

REPO = Path(__file__).resolve().parents[2]
README = REPO / "README.md"
DOCS = [README, *sorted((REPO / "docs").glob("*.md")), REPO / "benchmarks" / "README.md"]
LINK = re.compile(r"\]\(([^)\s]+)\)")
PARENT_PATH = re.compile(r"(?:\.\./)+[\w.-][\w./-]*")  # `../x/y` in a link or in prose


def test_every_link_points_inside_the_repository_at_a_file_that_exists() -> None:
    for doc in DOCS:
        text = doc.read_text(encoding="utf-8")
        for mention in PARENT_PATH.findall(text):  # link or prose: in the clone, and there
            path = (doc.parent / mention.rstrip(".")).resolve()
            assert path.is_relative_to(REPO) and path.exists(), (doc.name, mention)
        for target in LINK.findall(text):
            if target.startswith(("http://", "https://", "#", "mailto:")):
                continue
            path = (doc.parent / target.split("#", 1)[0]).resolve()
            assert path.is_relative_to(REPO), (doc.name, target)
            assert path.exists(), (doc.name, target)


def test_the_defaults_block_lists_the_real_defaults() -> None:
    text = README.read_text(encoding="utf-8")
    start = text.index("Every key with its default")
    block = text[start:].split("```yaml\n", 1)[1].split("```", 1)[0]
    assert yaml.safe_load(block) == Settings().model_dump(mode="json", by_alias=True)


def test_every_command_but_serve_has_json_as_the_readme_says() -> None:
    def walk(command, path):
        if hasattr(command, "commands"):
            for name, sub in command.commands.items():
                yield from walk(sub, (*path, name))
        else:
            yield path, {opt for p in command.params for opt in getattr(p, "opts", [])}

    without = sorted(" ".join(path) for path, opts in walk(typer.main.get_command(app), ())
                     if "--json" not in opts)
    assert without == ["serve"]
    assert "every\ncommand but `serve`" in README.read_text(encoding="utf-8")


def test_the_cli_default_env_is_the_configs_default_env() -> None:
    assert DEFAULT_ENV == CONFIG_DEFAULT_ENV
