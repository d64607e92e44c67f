"""Regenerate gnosis/config/defaults.toml and the README's configuration table.

Both are derived from gnosis/config.py (field defaults and the docstring under each
field), so the documentation cannot drift from the code. Run after editing config.py:

    python scripts/gen_config_docs.py
"""

from __future__ import annotations

import ast
import dataclasses
import re
from pathlib import Path

from gnosis.config import Settings

ROOT = Path(__file__).resolve().parents[1]
BEGIN, END = "<!-- config-table:begin -->", "<!-- config-table:end -->"


def field_docs() -> dict[tuple[str, str], str]:
    """(class name, field) -> the docstring written under the field."""
    tree = ast.parse((ROOT / "gnosis/config.py").read_text())
    docs = {}
    for node in tree.body:
        if not isinstance(node, ast.ClassDef):
            continue
        body = node.body
        for stmt, nxt in zip(body, [*body[1:], None], strict=True):
            if (isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name)
                    and isinstance(nxt, ast.Expr) and isinstance(nxt.value, ast.Constant)
                    and isinstance(nxt.value.value, str)):
                docs[(node.name, stmt.target.id)] = " ".join(nxt.value.value.split())
    return docs


def toml_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return repr(value)


def main() -> None:
    docs = field_docs()
    settings = Settings()
    toml = ["# Gnosis configuration: every key with its default.",
            "# Copy, edit and pass with --config (or GNOSIS_CONFIG); any key can also be set",
            "# by the environment variable GNOSIS_<SECTION>__<KEY>.", ""]
    rows = ["| key | default | environment variable | meaning |", "|---|---|---|---|"]
    for section in dataclasses.fields(settings):
        obj = getattr(settings, section.name)
        cls = type(obj).__name__
        toml.append(f"[{section.name}]")
        for item in dataclasses.fields(obj):
            doc = docs.get((cls, item.name), "")
            value = getattr(obj, item.name)
            if doc:
                toml.append(f"# {doc}")
            toml.append(f"{item.name} = {toml_value(value)}")
            env = f"GNOSIS_{section.name.upper()}__{item.name.upper()}"
            rows.append(f"| `{section.name}.{item.name}` | `{toml_value(value)}` | `{env}` "
                        f"| {doc} |")
        toml.append("")
    (ROOT / "gnosis/config/defaults.toml").write_text("\n".join(toml))
    readme = ROOT / "README.md"
    text = readme.read_text()
    if BEGIN in text:
        table = BEGIN + "\n" + "\n".join(rows) + "\n" + END
        readme.write_text(re.sub(re.escape(BEGIN) + ".*?" + re.escape(END), lambda _: table,
                                 text, flags=re.S))


if __name__ == "__main__":
    main()
