"""Every message the runtime raises is ASCII, so AWS's runtime interface client can report it.

awslambdaric on python3.12+ posts an init error through `http.client`, which encodes the body as
Latin-1: one character outside it and the client dies before Lambda hears of the error
(tests/integration/test_awslambdaric_conformance.py shows it against the real client).
"""

from __future__ import annotations

import ast
from pathlib import Path

import mlops_cli.runtime
from mlops_cli.runtime.model import ModelLoadError

RUNTIME = Path(mlops_cli.runtime.__file__).parent


def test_a_model_load_error_escapes_whatever_it_quotes() -> None:
    error = ModelLoadError("model file /opt/mod\u00e8le\u2014x/model.json is unreadable")
    assert str(error).isascii()
    assert "mod\\xe8le\\u2014x" in str(error)


def test_no_raise_in_the_runtime_writes_a_non_ascii_literal() -> None:
    offenders = []
    for path in sorted(RUNTIME.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.Raise) or node.exc is None:
                continue
            for part in ast.walk(node.exc):
                text = part.value if isinstance(part, ast.Constant) else None
                if isinstance(text, str) and not text.isascii():
                    offenders.append(f"{path.name}:{part.lineno}: {text!r}")
    assert offenders == []
