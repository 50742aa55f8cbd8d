"""The manifest's rules (message + JSON path + fix), unknown services, and the cache."""

from __future__ import annotations

import copy
import json
import os
from pathlib import Path
from typing import Any

import pytest

from recio_setup.errors import RecioError
from recio_setup.runtime.manifest_cache import cached_manifest, clear_cache
from recio_setup.runtime.ports import (
    ManifestError,
    ManifestMissing,
    UnknownServiceError,
    load_manifest,
    parse_manifest,
)

TEMPLATE = Path(__file__).resolve().parent.parent / "templates/MASTER_PORT_MANIFEST.json"


def template() -> dict[str, Any]:
    return copy.deepcopy(json.loads(TEMPLATE.read_text()))


def problems(document: Any) -> dict[str, tuple[str, str]]:
    manifest = parse_manifest(json.dumps(document), "m.json")
    return {p.path: (p.message, p.fix) for p in manifest.problems}


def test_template_is_valid_with_the_ten_reference_services() -> None:
    manifest = load_manifest(TEMPLATE)
    assert manifest.ok, manifest.problems
    assert manifest.ports() == {
        "main_app": 3000,
        "trade_manager": 4000,
        "trade_executor": 8001,
        "active_trade_supervisor": 8007,
        "auto_entry_supervisor": 8009,
        "btc_price_watchdog": 8002,
        "db_poller": 8003,
        "kalshi_account_sync": 8004,
        "kalshi_api_watchdog": 8005,
        "unified_production_coordinator": 8010,
    }
    assert manifest.ranges == {"core": (3000, 4000), "safe": (8000, 8100)}
    assert manifest.avoid == (5000, 7000, 9000, 10000)


def test_top_level_must_be_an_object() -> None:
    assert "must be a JSON object" in problems([1, 2])["(top level)"][0]


def test_missing_group_is_named() -> None:
    document = template()
    del document["watchdog_services"]
    message, fix = problems(document)["watchdog_services"]
    assert message == "is missing" and "watchdog_services" in fix


def test_script_name_key_is_refused() -> None:
    document = template()
    document["watchdog_services"]["supervisor_clean.py"] = {"port": 8020}
    message, fix = problems(document)['watchdog_services["supervisor_clean.py"]']
    assert "script name" in message and "`supervisor_clean`" in fix


def test_non_identifier_key_is_refused() -> None:
    document = template()
    document["core_services"]["trade-api"] = {"port": 3001}
    message, fix = problems(document)['core_services["trade-api"]']
    assert "not a service name" in message and "trade_api" in fix


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("8001", "is a string ('8001'), not a number"),
        (8001.0, "is not a whole number"),
        (True, "is a boolean (true)"),
        (0, "0 is not from 1 to 65535"),
        (70000, "70000 is not from 1 to 65535"),
        (None, "must be a port number, not null"),
    ],
)
def test_port_must_be_an_integer_port(value: Any, expected: str) -> None:
    document = template()
    document["core_services"]["trade_executor"]["port"] = value
    message, fix = problems(document)["core_services.trade_executor.port"]
    assert message.startswith(expected)
    if value == "8001":
        assert fix == "write 8001 without quotes"
    else:
        # A free port in the range the service belongs in, not used by anyone.
        assert fix == "use a free port such as 3001 (core range 3000-4000)"


def test_missing_port() -> None:
    document = template()
    del document["watchdog_services"]["db_poller"]["port"]
    message, fix = problems(document)["watchdog_services.db_poller.port"]
    assert message == "is missing" and "8000 (safe range 8000-8100)" in fix


def test_duplicate_port_across_groups() -> None:
    document = template()
    document["watchdog_services"]["db_poller"]["port"] = 8001  # trade_executor's, a core service
    message, fix = problems(document)["watchdog_services.db_poller.port"]
    assert message == "port 8001 is also used by core_services.trade_executor"
    assert fix == "use a free port such as 8000 (safe range 8000-8100)"


def test_avoided_port() -> None:
    document = template()
    document["watchdog_services"]["db_poller"]["port"] = 7000
    message, _ = problems(document)["watchdog_services.db_poller.port"]
    assert "port 7000 is on the avoided list" in message


def test_watchdog_outside_safe_range() -> None:
    document = template()
    document["watchdog_services"]["db_poller"]["port"] = 3500
    message, fix = problems(document)["watchdog_services.db_poller.port"]
    assert message == "port 3500 is outside the range for watchdog_services (8000-8100)"
    assert "safe range" in fix


def test_core_service_may_use_core_or_safe_range_only() -> None:
    document = template()
    document["core_services"]["trade_manager"]["port"] = 6000
    message, fix = problems(document)["core_services.trade_manager.port"]
    assert "(3000-4000 or 8000-8100)" in message and "core range" in fix


def test_declared_policy_is_what_judges() -> None:
    document = template()
    document["port_ranges"]["safe"] = {"start": 8000, "end": 8004}
    document["notes"]["avoid_ports"] = [8003]
    found = problems(document)
    assert "outside the range" in found["watchdog_services.unified_production_coordinator.port"][0]
    assert "avoided list (notes.avoid_ports: 8003)" in found["watchdog_services.db_poller.port"][0]
    # A range written as text is understood too; a malformed one is a problem of its own.
    document["port_ranges"]["safe"] = "8000-8100"
    document["notes"]["avoid_ports"] = []
    assert problems(document) == {}
    document["port_ranges"]["safe"] = "lots"
    assert "port_ranges.safe" in problems(document)


def test_bad_avoid_list() -> None:
    document = template()
    document["notes"]["avoid_ports"] = "5000"
    assert "must be a list of port numbers" in problems(document)["notes.avoid_ports"][0]


def test_unknown_extra_keys_are_allowed() -> None:
    document = template()
    document["maintainer"] = {"anything": [1, 2]}
    document["core_services"]["main_app"]["health"] = "/health"
    assert problems(document) == {}


def test_two_problems_never_suggest_the_same_free_port() -> None:
    document = template()
    document["watchdog_services"]["db_poller"]["port"] = 9000
    document["watchdog_services"]["kalshi_api_watchdog"]["port"] = 10000
    fixes = [fix for _, fix in problems(document).values()]
    assert len(fixes) == 2 and len(set(fixes)) == 2


def test_bad_json_names_line_and_column() -> None:
    with pytest.raises(ManifestError) as info:
        parse_manifest('{\n  "core_services": ,\n}', "/x/m.json")
    assert "/x/m.json" in info.value.message and "line 2, column 20" in info.value.message


def test_unknown_service_is_a_keyerror_naming_close_matches(tmp_path: Path) -> None:
    manifest = load_manifest(TEMPLATE)
    with pytest.raises(KeyError) as info:
        manifest.port("trade_exector")
    error = info.value
    assert isinstance(error, UnknownServiceError) and isinstance(error, RecioError)
    assert "did you mean trade_executor" in str(error)
    assert "main_app" in (error.hint or "")
    with pytest.raises(UnknownServiceError, match="no similar name"):
        manifest.port("zzzz")


# -- the cache ----------------------------------------------------------------------------------
@pytest.fixture
def manifest_file(tmp_path: Path) -> Path:
    clear_cache()
    path = tmp_path / "MASTER_PORT_MANIFEST.json"
    path.write_bytes(TEMPLATE.read_bytes())
    return path


def write_with_port(path: Path, port: int) -> None:
    document = template()
    document["core_services"]["main_app"]["port"] = port
    path.write_text(json.dumps(document))


def test_cache_parses_once_per_version(manifest_file: Path) -> None:
    first = cached_manifest(manifest_file)
    assert cached_manifest(manifest_file) is first  # no re-parse while unchanged


def test_cache_sees_an_edit(manifest_file: Path) -> None:
    assert cached_manifest(manifest_file).port("main_app") == 3000
    write_with_port(manifest_file, 3100)
    assert cached_manifest(manifest_file).port("main_app") == 3100


def test_cache_sees_replace_by_rename_with_same_size_and_mtime(manifest_file: Path) -> None:
    write_with_port(manifest_file, 3000)
    assert cached_manifest(manifest_file).port("main_app") == 3000
    before = manifest_file.stat()
    replacement = manifest_file.with_name("new.json")
    write_with_port(replacement, 3999)  # same byte length: 3000 -> 3999
    os.utime(replacement, ns=(before.st_atime_ns, before.st_mtime_ns))
    os.replace(replacement, manifest_file)
    after = manifest_file.stat()
    assert (after.st_size, after.st_mtime_ns) == (before.st_size, before.st_mtime_ns)
    assert after.st_ino != before.st_ino
    assert cached_manifest(manifest_file).port("main_app") == 3999


def test_manifest_that_goes_bad_raises_and_never_falls_back(manifest_file: Path) -> None:
    assert cached_manifest(manifest_file).port("main_app") == 3000
    manifest_file.write_text('{"core_services": {"main_app": {"port": "3000"}}}')
    with pytest.raises(ManifestError) as info:
        cached_manifest(manifest_file)
    assert str(manifest_file) in info.value.message
    assert "core_services.main_app.port" in info.value.message
    with pytest.raises(ManifestError):  # still bad on the cached path, too
        cached_manifest(manifest_file)
    manifest_file.write_text("{")
    with pytest.raises(ManifestError, match="not valid JSON at line 1"):
        cached_manifest(manifest_file)
    manifest_file.unlink()
    with pytest.raises(ManifestMissing):
        cached_manifest(manifest_file)


def test_command_defaults_to_the_service_script_and_template_commands_are_kept() -> None:
    document = template()
    del document["core_services"]["main_app"]["command"]
    manifest = parse_manifest(json.dumps(document), "m.json")
    assert manifest.ok, manifest.problems
    assert manifest.services["main_app"].command == ("backend/main_app.py",)
    assert manifest.services["btc_price_watchdog"].command == (
        "backend/symbol_price_watchdog.py",
        "BTC",
    )


@pytest.mark.parametrize(
    ("command", "message"),
    [
        ("backend/main.py", "non-empty list of strings"),
        ([], "non-empty list of strings"),
        (["backend/main.py", 3], "item 1 must be a non-empty string"),
        (["backend/main.py", ""], "item 1 must be a non-empty string"),
        (["/opt/rec_io/main.py"], "absolute path"),
        (["~/main.py"], "absolute path"),
        (["backend/../../main.py"], "out of the project with `..`"),
        (["..", "x"], "out of the project with `..`"),
        (["backend/main.py", "a\nb"], "line break"),
        (["backend/main.py", "x ;comment"], "comment"),
    ],
)
def test_a_bad_command_is_named_with_its_path_and_a_fix(command: Any, message: str) -> None:
    document = template()
    document["core_services"]["main_app"]["command"] = command
    found, fix = problems(document)["core_services.main_app.command"]
    assert message in found and "backend/main_app.py" in fix
