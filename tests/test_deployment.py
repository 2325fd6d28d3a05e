"""The compose deployment, its settings file and the images, checked without Docker.

``tests/data/compose-spec.json`` is the Compose Specification schema as shipped in
the check-jsonschema 0.39.0 wheel on PyPI
(``check_jsonschema/builtin_schemas/vendor/compose-spec.json``, sha256
d549057ebc2925f39f62799eab0db7b9e2c18b35b6c00595199116da3ed10e64); its Apache-2.0
licence is ``tests/data/LICENSE.compose-spec``.
"""

from __future__ import annotations

import ast
import itertools
import json
import os
import re
import subprocess
import tomllib
from collections.abc import Iterator
from pathlib import Path

import jsonschema
import pytest
import yaml

from loopitis.errors import ConfigError
from loopitis.local.ports import free_port
from loopitis.local.postgres import BIN_DIR, LocalPostgres
from loopitis.settings import Settings, load_settings

ROOT = Path(__file__).resolve().parent.parent
COMPOSE_SPEC = Path(__file__).resolve().parent / "data" / "compose-spec.json"
DOCKERFILES = {"gateway": "Dockerfile.endpoints", "consumer": "Dockerfile.consumer"}
KNOWN_SUBCOMMANDS = ["migrate", "gateway", "consumer", "dev"]
_VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)")


def _compose() -> dict[str, object]:
    loaded = yaml.safe_load((ROOT / "compose.yaml").read_text())
    assert isinstance(loaded, dict)
    return loaded


def _services() -> dict[str, dict[str, object]]:
    services = _compose()["services"]
    assert isinstance(services, dict)
    return services


def _properties() -> dict[str, str]:
    values: dict[str, str] = {}
    for line in (ROOT / "config.properties").read_text().splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        name, separator, value = line.partition("=")
        assert separator, f"config.properties line is not NAME=value: {line!r}"
        values[name.strip()] = value.strip()
    return values


def _final_stage(dockerfile: str) -> list[str]:
    lines = (ROOT / dockerfile).read_text().splitlines()
    last_from = max(i for i, line in enumerate(lines) if line.startswith("FROM "))
    return [line.strip() for line in lines[last_from:] if line.strip()]


def _instruction(stage: list[str], keyword: str) -> list[str]:
    found = [line for line in stage if line.startswith(keyword + " ")]
    assert len(found) == 1, f"expected one {keyword} in the final stage"
    parsed = json.loads(found[0].removeprefix(keyword + " "))
    assert isinstance(parsed, list)
    return parsed


def _cli_subcommands() -> set[str]:
    """Names the CLI can dispatch on: string literals and function names in cli.py."""
    cli = ROOT / "src" / "loopitis" / "cli.py"
    if not cli.exists():
        return set(KNOWN_SUBCOMMANDS)
    tree = ast.parse(cli.read_text())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            names.add(node.value)
        if isinstance(node, ast.FunctionDef):
            names.add(node.name.replace("_", "-"))
    return names


def test_compose_matches_the_compose_specification() -> None:
    """compose.yaml validates against the Compose Specification JSON schema."""
    schema = json.loads(COMPOSE_SPEC.read_text())

    jsonschema.Draft202012Validator(schema).validate(_compose())


def test_compose_variables_are_all_in_config_properties() -> None:
    """Every ${VAR} that compose.yaml interpolates is defined in config.properties."""
    used = set(_VARIABLE.findall((ROOT / "compose.yaml").read_text()))

    assert used
    assert sorted(used - set(_properties())) == []


def test_config_properties_names_every_setting() -> None:
    """Each field of Settings appears in config.properties as LOOPITIS_<NAME>."""
    expected = {f"LOOPITIS_{name.upper()}" for name in Settings.model_fields}

    assert sorted(expected - set(_properties())) == []


def test_config_properties_comments_every_setting() -> None:
    """Each setting line in config.properties has a comment line right above it."""
    lines = (ROOT / "config.properties").read_text().splitlines()

    uncommented = [
        line
        for above, line in itertools.pairwise(lines)
        if line and not line.startswith("#") and not above.startswith("#")
    ]

    assert uncommented == []


def test_config_properties_database_password_matches_init_role() -> None:
    """The database URL carries the password that init.sql gives the loopitis role."""
    properties = _properties()

    url_password = properties["LOOPITIS_DATABASE_URL"].split(":")[2].split("@")[0]

    assert url_password == properties["POSTGRES_LOOPITIS_PASSWORD"]


def test_config_properties_placeholders_are_refused_in_production(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Loaded as they ship, the settings stop production with a ConfigError."""
    for name in list(os.environ):
        if name.startswith("LOOPITIS_"):
            monkeypatch.delenv(name)
    for name, value in _properties().items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("LOOPITIS_ENV", "production")

    with pytest.raises(ConfigError) as raised:
        load_settings()

    assert raised.value.setting == "LOOPITIS_PASSWORD"


def test_compose_consumer_can_be_scaled() -> None:
    """No service pins a container_name, so `--scale consumer=N` works."""
    services = _services()

    assert "consumer" in services
    assert [name for name, spec in services.items() if "container_name" in spec] == []


def test_compose_starts_loopitis_after_migration() -> None:
    """Gateway and consumers wait for a successful migrate and healthy servers."""
    services = _services()

    for name in ("gateway", "consumer"):
        assert services[name]["depends_on"] == {
            "postgres": {"condition": "service_healthy"},
            "kafka": {"condition": "service_healthy"},
            "migrate": {"condition": "service_completed_successfully"},
        }
    assert services["migrate"]["command"] == ["migrate"]
    for name in ("postgres", "kafka", "gateway"):
        assert "test" in services[name]["healthcheck"]  # type: ignore[operator]


def test_dockerfiles_run_existing_loopitis_commands() -> None:
    """Entrypoints name the loopitis script; commands name real subcommands."""
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    subcommands = _cli_subcommands()
    compose_commands = [
        spec["command"][0]  # type: ignore[index]
        for spec in _services().values()
        if "command" in spec and "build" in spec
    ]

    assert "loopitis" in scripts
    for role, dockerfile in DOCKERFILES.items():
        stage = _final_stage(dockerfile)
        assert _instruction(stage, "ENTRYPOINT") == ["loopitis"]
        assert _instruction(stage, "CMD")[0] == role
        assert role in subcommands
    assert compose_commands == ["migrate"]
    assert "migrate" in subcommands


def test_dockerfiles_final_stage_is_lean_and_not_root() -> None:
    """The final stage runs as a non-root user and carries no build step or tool."""
    for dockerfile in DOCKERFILES.values():
        text = (ROOT / dockerfile).read_text()
        stage = _final_stage(dockerfile)
        users = [line.split()[1] for line in stage if line.startswith("USER ")]

        assert text.count("FROM ") == 2
        assert "FROM python:3.11-slim AS builder" in text
        assert "pip wheel" in text
        assert users and users[-1] not in ("root", "0")
        assert not any("pip wheel" in line or "apt-get" in line for line in stage)
        assert not any(line.startswith(("COPY src", "COPY .")) for line in stage)


@pytest.fixture
def postgres(tmp_path: Path) -> Iterator[LocalPostgres]:
    server = LocalPostgres(tmp_path / "pg", free_port())
    server.start()
    yield server
    server.stop()


def _run_init_sql(
    server: LocalPostgres, password: str | None
) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("POSTGRES_")}
    if password is not None:
        environment["POSTGRES_LOOPITIS_PASSWORD"] = password
    command = [
        str(BIN_DIR / "psql"),
        "-X",
        server.url,
        "-f",
        str(ROOT / "init.sql"),
    ]
    return subprocess.run(
        command, env=environment, capture_output=True, text=True, check=False
    )


def test_init_sql_creates_the_role_and_its_database(postgres: LocalPostgres) -> None:
    """init.sql, run as the image runs it, creates a loopitis role owning its db."""
    result = _run_init_sql(postgres, "s3cret-for-test")

    assert result.returncode == 0, result.stderr
    owner = subprocess.run(
        [
            str(BIN_DIR / "psql"),
            "-X",
            "-tA",
            postgres.database_url("loopitis"),
            "-c",
            "SELECT nspowner::regrole FROM pg_namespace WHERE nspname = 'public'",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert owner.stdout.strip() == "loopitis"


def test_init_sql_stops_without_a_password(postgres: LocalPostgres) -> None:
    """Without POSTGRES_LOOPITIS_PASSWORD init.sql fails and names the variable."""
    result = _run_init_sql(postgres, None)

    assert result.returncode != 0
    assert "POSTGRES_LOOPITIS_PASSWORD is not set" in result.stderr
