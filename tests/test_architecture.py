"""ARCHITECTURE.md stays true: every package and module it names exists, and every package and top-level
module of pvmonit_exporter is named in its layers."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "pvmonit_exporter"
MAP = ROOT / "ARCHITECTURE.md"


def layers_block() -> str:
    text = MAP.read_text()
    section = text.split("## The layers and the rule between them", 1)[1]
    return section.split("```", 2)[1]


def named_in_layers() -> set[str]:
    """The parts each line of the layers begins with (`state.py`, `web/`), before the two spaces of its gloss."""
    heads = [re.split(r"\s{2,}", line.strip())[0] for line in layers_block().splitlines() if line.strip()]
    return {token for head in heads for token in head.split()}


def parts_of_the_package() -> set[str]:
    parts = {f"{path.name}/" for path in PACKAGE.iterdir() if (path / "__init__.py").exists()}
    parts |= {path.name for path in PACKAGE.glob("*.py") if path.name not in ("__init__.py", "__main__.py")}
    return parts


def test_every_part_named_in_the_layers_exists() -> None:
    assert sorted(named_in_layers() - parts_of_the_package()) == []


def test_every_part_of_the_package_is_named_in_the_layers() -> None:
    assert sorted(parts_of_the_package() - named_in_layers()) == []


def test_every_module_path_the_map_names_exists() -> None:
    paths = set(re.findall(r"`((?:[a-z_]+/)+[a-z_]+\.py)`", MAP.read_text()))
    assert paths  # the map does name files
    missing = sorted(path for path in paths if not (PACKAGE / path).exists() and not (ROOT / path).exists())
    assert missing == []


def test_the_import_contracts_name_every_layer() -> None:
    contracts = (ROOT / "pyproject.toml").read_text().split("[tool.importlinter]", 1)[1]
    layered = set(re.findall(r"pvmonit_exporter\.([a-z_]+)", contracts))
    parts = {part.removesuffix("/").removesuffix(".py") for part in parts_of_the_package()}
    assert sorted(parts - layered) == []
