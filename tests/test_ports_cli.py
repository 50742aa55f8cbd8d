"""`recio-setup ports` as a user runs it: table, JSON, problems and exit codes."""

from __future__ import annotations

import json
import shutil
import socket
from pathlib import Path
from typing import Any

from tests.conftest import REPO, Cli

TEMPLATE = REPO / "templates/MASTER_PORT_MANIFEST.json"
MANIFEST = "backend/core/config/MASTER_PORT_MANIFEST.json"


def install(project: Path, document: Any = None) -> Path:
    path = project / MANIFEST
    path.parent.mkdir(parents=True)
    if document is None:
        shutil.copy(TEMPLATE, path)
    else:
        path.write_text(json.dumps(document) if not isinstance(document, str) else document)
    return path


def template() -> dict[str, Any]:
    return json.loads(TEMPLATE.read_text())


def test_table_for_the_template(cli: Cli, project: Path) -> None:
    install(project)
    run = cli("ports", env={"TRADING_SYSTEM_HOST": "10.0.0.7"})
    assert run.code == 0, run.all
    lines = run.out.splitlines()
    header = next(line for line in lines if "service" in line and "listening" in line)
    for column in ("group", "port", "URL", "problems"):
        assert column in header
    row = next(line for line in lines if "trade_executor" in line).split()
    assert row[:4] == ["trade_executor", "core_services", "8001", "http://10.0.0.7:8001"]
    for name in template()["watchdog_services"]:
        rows = [line.split()[:2] for line in lines if line.strip()]
        assert [name, "watchdog_services"] in rows
    assert "the manifest is valid" in run.out


def test_json_has_the_same_data_and_probes_loopback(cli: Cli, project: Path) -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        document = template()
        document["core_services"]["main_app"]["port"] = port
        install(project, document)
        run = cli("ports", "--json", env={"TRADING_SYSTEM_HOST": "box.local"})
    envelope = run.json()
    services = {row["service"]: row for row in envelope["result"]["data"]["services"]}
    assert len(services) == 10
    assert services["main_app"]["listening"] is True
    assert services["main_app"]["url"] == f"http://box.local:{port}"
    assert services["db_poller"]["group"] == "watchdog_services"
    # An ephemeral port is outside the core range: a problem, and exit 1.
    assert run.code == 1 and services["main_app"]["problems"]
    assert envelope["result"]["data"]["problems"][0]["path"] == "core_services.main_app.port"


def test_exit_1_listing_each_problem_with_path_and_fix(cli: Cli, project: Path) -> None:
    document = template()
    document["watchdog_services"]["db_poller"]["port"] = 8002  # btc_price_watchdog's
    document["watchdog_services"]["kalshi_api_watchdog"]["port"] = 5000  # avoided
    document["core_services"]["trade_executor"]["port"] = "8001"  # a string
    document["watchdog_services"]["supervisor_clean.py"] = {"port": 8020}  # a script name
    install(project, document)
    run = cli("ports")
    assert run.code == 1, run.all
    out = " ".join(run.out.split())
    assert (
        "[fail] manifest watchdog_services.db_poller.port: "
        "port 8002 is also used by watchdog_services.btc_price_watchdog" in out
    )
    assert (
        "[fail] manifest watchdog_services.kalshi_api_watchdog.port: port 5000 is on the avoided"
        in out
    )
    assert "[fail] manifest core_services.trade_executor.port: is a string ('8001')" in out
    assert "write 8001 without quotes" in out
    assert 'watchdog_services["supervisor_clean.py"]: is a script name' in out
    assert "has 4 problems" in out
    assert out.count("use a free port such as") == 2


def test_missing_manifest_says_so_and_points_to_init(cli: Cli, project: Path) -> None:
    run = cli("ports")
    assert run.code == 1
    assert "does not exist" in run.err and "`python3 bootstrap.py init`" in run.err
    assert not (project / "backend").exists()  # nothing written


def test_bad_json_gives_line_and_column(cli: Cli, project: Path) -> None:
    install(project, '{\n  "core_services": {\n    "main_app": {"port": 3000,}\n  }\n}')
    run = cli("ports")
    assert run.code == 1
    assert "not valid JSON at line 3, column 31" in run.err
    assert "Traceback" not in run.all


def test_no_valid_service_lists_the_problems_in_plain_output(cli: Cli, project: Path) -> None:
    install(project, {"core_services": {"main_app": 1}, "watchdog_services": {}})
    run = cli("ports")  # no terminal: the plain table, as under `ports | cat`
    assert run.code == 1, run.all
    assert "core_services.main_app: must be an object" in " ".join(run.out.split())
    assert "unexpected error" not in run.all and not (project / "logs").exists()


def test_a_port_of_5000_digits_or_deep_nesting_is_named_not_a_crash(
    cli: Cli, project: Path
) -> None:
    manifest = install(project, TEMPLATE.read_text().replace("3000", "9" * 5000, 1))
    run = cli("ports")
    assert run.code == 1 and "a number with 5000 digits" in run.err and str(manifest) in run.err
    manifest.write_text("[" * 100_000)
    run = cli("ports")
    assert run.code == 1 and "nested too deeply" in run.err, run.all
    assert "unexpected error" not in run.all and not (project / "logs").exists()
