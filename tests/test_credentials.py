"""`credentials add|status|remove`, the check of the credentials, and get_kalshi_credentials: with
keys generated here by cryptography, real files and modes, and the CLI run as a user runs it."""

from __future__ import annotations

import datetime
import json
import os
import shutil
import stat
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from recio_setup.runtime.kalshi import CredentialsError, get_kalshi_credentials
from tests.conftest import Cli, Run, tree_snapshot

KEY_ID = "0a1b2c3d-4e5f-6a7b-8c9d-0e1f2a3b4c5d"
OTHER_ID = "9f8e7d6c-5b4a-3210-fedc-ba9876543210"
FOLDER = "backend/data/users/user_0001/credentials/kalshi-credentials"
PEM = serialization.Encoding.PEM


def _private(key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey, fmt: str = "pkcs1") -> bytes:
    form = (
        serialization.PrivateFormat.TraditionalOpenSSL
        if fmt == "pkcs1"
        else serialization.PrivateFormat.PKCS8
    )
    return key.private_bytes(PEM, form, serialization.NoEncryption())


def _certificate(key: rsa.RSAPrivateKey) -> bytes:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "recio-test")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(PEM)


@pytest.fixture(scope="module")
def keys() -> dict[str, bytes]:
    """One key of each kind a user may hand over; generated once for the module."""
    rsa2048 = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    rsa4096 = rsa.generate_private_key(public_exponent=65537, key_size=4096)
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    small = rsa.generate_private_key(public_exponent=65537, key_size=1024)  # noqa: S505 (refused)
    good = _private(rsa2048)
    return {
        "rsa2048": good,
        "rsa4096_pkcs8": _private(rsa4096, "pkcs8"),
        "other": _private(other),
        "small": _private(small),
        "ec": _private(ec.generate_private_key(ec.SECP256R1()), "pkcs8"),
        "ec_pkcs1": _private(ec.generate_private_key(ec.SECP256R1())),
        "encrypted": rsa2048.private_bytes(
            PEM, serialization.PrivateFormat.PKCS8, serialization.BestAvailableEncryption(b"pw")
        ),
        "encrypted_pkcs1": rsa2048.private_bytes(
            PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.BestAvailableEncryption(b"pw"),
        ),
        "public": rsa2048.public_key().public_bytes(
            PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ),
        "truncated": good[: len(good) // 2] + b"\n-----END RSA PRIVATE KEY-----\n",
        "certificate": _certificate(rsa2048),
        "garbage": b"this is not a key\n",
    }


def body_lines(pem: bytes) -> list[str]:
    return [line for line in pem.decode().splitlines() if line and not line.startswith("-----")]


def write_key(tmp_path: Path, data: bytes, name: str = "key.pem") -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def add(
    cli: Cli, key: Path | str, *extra: str, env: str = "demo", key_id: str = KEY_ID, **kwargs: Any
) -> Run:
    return cli(
        "credentials", "add", "--env", env, "--key-id", key_id,
        "--private-key-file", str(key), *extra, **kwargs,
    )  # fmt: skip


def mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


def kalshi_checks(cli: Cli) -> dict[str, dict[str, object]]:
    run = cli("check", "--skip-db-check", "--json")
    checks = run.json()["result"]["checks"]
    return {c["name"]: c for c in checks if c["name"].startswith("kalshi credentials")}


@pytest.mark.parametrize("umask", [0o000, 0o077])
def test_add_writes_both_files_0600_and_check_and_the_runtime_see_them(
    cli: Cli, project: Path, tmp_path: Path, keys: dict[str, bytes], umask: int
) -> None:
    before = kalshi_checks(cli)
    assert before["kalshi credentials demo"]["status"] == "warn"
    assert "absent" in str(before["kalshi credentials demo"]["detail"])
    run = add(cli, write_key(tmp_path, keys["rsa2048"]), "--email", "dev@example.com", umask=umask)
    assert run.code == 0, run.all
    folder = project / FOLDER / "demo"
    assert mode(folder) == 0o700
    assert mode(folder / "kalshi.pem") == 0o600
    assert mode(folder / "kalshi-auth.txt") == 0o600
    assert (folder / "kalshi-auth.txt").read_text() == f"email:dev@example.com\nkey:{KEY_ID}\n"
    written = serialization.load_pem_private_key((folder / "kalshi.pem").read_bytes(), None)
    given = serialization.load_pem_private_key(keys["rsa2048"], None)
    assert isinstance(written, rsa.RSAPrivateKey) and isinstance(given, rsa.RSAPrivateKey)
    assert written.private_numbers() == given.private_numbers()
    assert KEY_ID in run.out and "demo" in run.out
    after = kalshi_checks(cli)
    assert after["kalshi credentials demo"]["status"] == "ok"
    assert after["kalshi credentials prod"]["status"] == "warn"
    found = get_kalshi_credentials("demo", root=project)
    assert (found.key_id, found.email) == (KEY_ID, "dev@example.com")
    assert found.private_key_path == str(folder / "kalshi.pem")


def test_a_4096_bit_pkcs8_key_from_stdin_is_kept_as_pkcs8(
    cli: Cli, project: Path, keys: dict[str, bytes]
) -> None:
    run = add(cli, "-", "--json", input=keys["rsa4096_pkcs8"].decode())
    assert run.code == 0, run.all
    pem = (project / FOLDER / "demo" / "kalshi.pem").read_bytes()
    assert pem.startswith(b"-----BEGIN PRIVATE KEY-----")
    assert run.json()["result"]["data"]["key_id"] == KEY_ID
    # The key ID may come from the environment instead of the flag.
    again = cli(
        "credentials", "add", "--env", "prod", "--private-key-file", "-",
        input=keys["rsa2048"].decode(), env={"KALSHI_API_KEY_ID": OTHER_ID},
    )  # fmt: skip
    assert again.code == 0, again.all
    assert get_kalshi_credentials("prod", root=project).key_id == OTHER_ID


@pytest.mark.parametrize(
    ("kind", "cause", "words"),
    [
        ("encrypted", "key_encrypted", "openssl pkey -in"),
        ("encrypted_pkcs1", "key_encrypted", "openssl pkey -in"),
        ("public", "key_public", "public key"),
        ("ec", "key_ec", "EC (elliptic-curve)"),
        ("ec_pkcs1", "key_ec", "EC (elliptic-curve)"),
        ("certificate", "key_certificate", "certificate"),
        ("truncated", "key_damaged", "does not parse"),
        ("garbage", "key_garbage", "not a PEM file"),
        ("small", "too_small", "1024-bit"),
    ],
)
def test_every_wrong_key_exits_2_with_its_own_message_and_nothing_written(
    cli: Cli, project: Path, tmp_path: Path, keys: dict[str, bytes], kind: str, cause: str,
    words: str,
) -> None:  # fmt: skip
    key = write_key(tmp_path, keys[kind])
    run = add(cli, key)
    assert run.code == 2, run.all
    assert words in run.err
    assert len([line for line in run.err.splitlines() if line.startswith("error:")]) == 1
    assert json_error(cli, key)["cause"] == cause
    assert tree_snapshot(project) == {}


def json_error(cli: Cli, key: Path) -> dict[str, object]:
    run = add(cli, key, "--json")
    error: dict[str, object] = run.json()["error"]
    return error


@pytest.mark.parametrize(
    "args",
    [
        ("--key-id", "not-a-uuid", "--private-key-file", "K"),
        ("--private-key-file", "K"),
        ("--key-id", KEY_ID),
        ("--key-id", KEY_ID, "--private-key-file", "missing.pem"),
        ("--key-id", KEY_ID, "--private-key-file", "K", "--email", "no address"),
    ],
    ids=["bad-id", "no-id", "no-file", "missing-file", "bad-email"],
)
def test_bad_arguments_exit_2_with_nothing_written(
    cli: Cli, project: Path, tmp_path: Path, keys: dict[str, bytes], args: tuple[str, ...]
) -> None:
    key = str(write_key(tmp_path, keys["rsa2048"]))
    run = cli("credentials", "add", "--env", "demo", *(key if a == "K" else a for a in args))
    assert run.code == 2, run.all
    assert "hint:" in run.err
    assert tree_snapshot(project) == {}
    assert cli("credentials", "add", "--key-id", KEY_ID, "--private-key-file", key).code == 2
    refused = cli("credentials", "status", "--private-key-file", key)
    assert refused.code == 2 and "does not apply" in refused.err
    assert cli("credentials", "remove", "--env", "demo", "--key-id", KEY_ID).code == 2
    assert tree_snapshot(project) == {}


def test_replacing_needs_yes_and_keeps_the_old_pair_in_the_archive(
    cli: Cli, project: Path, tmp_path: Path, keys: dict[str, bytes]
) -> None:
    assert add(cli, write_key(tmp_path, keys["rsa2048"])).code == 0
    folder = project / FOLDER / "demo"
    old_pem, old_auth = (
        (folder / "kalshi.pem").read_bytes(),
        (folder / "kalshi-auth.txt").read_bytes(),
    )
    new_key = write_key(tmp_path, keys["other"], "new.pem")
    refused = add(cli, new_key)
    assert refused.code == 2 and "--yes" in refused.err
    assert (folder / "kalshi.pem").read_bytes() == old_pem
    # The same key again changes nothing and needs no confirmation.
    same = add(cli, write_key(tmp_path, keys["rsa2048"]))
    assert same.code == 0 and "already in place" in same.out
    run = add(cli, new_key, "--yes", "--json", key_id=OTHER_ID)
    assert run.code == 0, run.all
    archive = project / run.json()["result"]["data"]["archive"] / "files" / FOLDER / "demo"
    assert (archive / "kalshi.pem").read_bytes() == old_pem
    assert (archive / "kalshi-auth.txt").read_bytes() == old_auth
    assert mode(archive / "kalshi.pem") == 0o600
    assert (folder / "kalshi.pem").read_bytes() != old_pem
    assert mode(folder / "kalshi.pem") == 0o600


def test_a_symlink_at_the_key_is_archived_and_its_target_untouched(
    cli: Cli, project: Path, tmp_path: Path, keys: dict[str, bytes]
) -> None:
    assert add(cli, write_key(tmp_path, keys["rsa2048"])).code == 0
    folder = project / FOLDER / "demo"
    (folder / "kalshi.pem").unlink()
    outside = tmp_path / "outside.txt"
    outside.write_text("not yours\n")
    outside.chmod(0o644)
    (folder / "kalshi.pem").symlink_to(outside)
    run = add(cli, write_key(tmp_path, keys["other"], "new.pem"), "--yes", "--json")
    assert run.code == 0, run.all
    assert outside.read_text() == "not yours\n" and mode(outside) == 0o644
    assert not (folder / "kalshi.pem").is_symlink() and mode(folder / "kalshi.pem") == 0o600
    archive = project / run.json()["result"]["data"]["archive"] / "files" / FOLDER / "demo"
    assert os.readlink(archive / "kalshi.pem") == str(outside)


def test_a_folder_where_the_key_belongs_is_archived(
    cli: Cli, project: Path, tmp_path: Path, keys: dict[str, bytes]
) -> None:
    folder = project / FOLDER / "demo"
    folder.mkdir(parents=True)
    (folder / "kalshi.pem").mkdir()
    (folder / "kalshi.pem" / "inside").write_text("kept")
    run = add(cli, write_key(tmp_path, keys["rsa2048"]), "--yes", "--json")
    assert run.code == 0, run.all
    assert (folder / "kalshi.pem").is_file()
    archive = project / run.json()["result"]["data"]["archive"] / "files" / FOLDER / "demo"
    assert (archive / "kalshi.pem" / "inside").read_text() == "kept"


def test_a_symlinked_environment_folder_is_never_written_through(
    cli: Cli, project: Path, tmp_path: Path, keys: dict[str, bytes]
) -> None:
    assert cli("credentials", "status").code == 0  # reads only; nothing to see yet
    (project / FOLDER).mkdir(parents=True)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (project / FOLDER / "demo").symlink_to(elsewhere)
    run = add(cli, write_key(tmp_path, keys["rsa2048"]), "--yes")
    assert run.code == 1, run.all
    assert "reset" in run.err
    assert list(elsewhere.iterdir()) == []
    status = cli("credentials", "status", "--env", "demo", "--json")
    assert status.code == 1
    assert status.json()["result"]["checks"][0]["data"]["state"] == "broken"


def test_broken_entries_fail_the_check(
    cli: Cli, project: Path, tmp_path: Path, keys: dict[str, bytes]
) -> None:
    assert add(cli, write_key(tmp_path, keys["rsa2048"])).code == 0
    folder = project / FOLDER / "demo"
    (folder / "kalshi.pem").chmod(0o644)
    found = kalshi_checks(cli)["kalshi credentials demo"]
    assert found["status"] == "fail" and "readable by others" in str(found["detail"])
    assert "chmod 600" in str(found["fix"])
    with pytest.raises(CredentialsError, match="readable by others"):
        get_kalshi_credentials("demo", root=project)
    (folder / "kalshi.pem").chmod(0o600)
    (folder / "kalshi-auth.txt").unlink()
    found = kalshi_checks(cli)["kalshi credentials demo"]
    assert found["status"] == "fail" and "no key ID" in str(found["detail"])
    with pytest.raises(CredentialsError, match="credentials add"):
        get_kalshi_credentials("demo", root=project)
    (folder / "kalshi-auth.txt").write_text(f"key:{KEY_ID}\n")
    (folder / "kalshi-auth.txt").chmod(0o600)
    (folder / "kalshi.pem").write_bytes(keys["truncated"])
    found = kalshi_checks(cli)["kalshi credentials demo"]
    assert found["status"] == "fail" and "does not parse" in str(found["detail"])
    with pytest.raises(CredentialsError, match="credentials add"):
        get_kalshi_credentials("prod", root=project)


def test_the_older_layout_is_recognised(
    cli: Cli, project: Path, tmp_path: Path, keys: dict[str, bytes]
) -> None:
    folder = project / FOLDER / "prod"
    folder.mkdir(parents=True, mode=0o700)
    legacy = folder / "kalshi-auth.pem"
    legacy.write_bytes(keys["rsa2048"])
    legacy.chmod(0o600)
    (folder / "kalshi-auth.txt").write_text(f"key:{KEY_ID}\n")
    found = kalshi_checks(cli)["kalshi credentials prod"]
    assert found["status"] == "warn" and "older layout" in str(found["detail"])
    assert get_kalshi_credentials("prod", root=project).private_key_path == str(legacy)
    run = add(cli, write_key(tmp_path, keys["rsa2048"]), "--yes", env="prod")
    assert run.code == 0, run.all
    assert not legacy.exists() and (folder / "kalshi.pem").is_file()
    assert kalshi_checks(cli)["kalshi credentials prod"]["status"] == "ok"


def test_remove_archives_both_files_and_says_where(
    cli: Cli, project: Path, tmp_path: Path, keys: dict[str, bytes]
) -> None:
    assert add(cli, write_key(tmp_path, keys["rsa2048"])).code == 0
    assert cli("credentials", "remove", "--env", "demo").code == 2  # no terminal, no --yes
    run = cli("credentials", "remove", "--env", "demo", "--yes")
    assert run.code == 0, run.all
    archive = run.out.splitlines()[-1].split("moved to ")[1]
    assert (project / archive / "files" / FOLDER / "demo" / "kalshi.pem").is_file()
    assert list((project / FOLDER / "demo").iterdir()) == []
    assert kalshi_checks(cli)["kalshi credentials demo"]["status"] == "warn"


INIT = ("--non-interactive", "--skip-db-check", "--host", "127.0.0.1", "-q")


def test_reset_all_keeps_the_credentials_unless_asked(
    cli: Cli, project: Path, tmp_path: Path, keys: dict[str, bytes]
) -> None:
    assert cli(*INIT, env={"POSTGRES_PASSWORD": "x-pw-1"}).code == 0
    assert add(cli, write_key(tmp_path, keys["rsa2048"])).code == 0
    pem = project / FOLDER / "demo" / "kalshi.pem"
    content = pem.read_bytes()
    assert cli("reset", "--all", "--yes").code == 0
    assert pem.read_bytes() == content and mode(pem) == 0o600
    run = cli("reset", "--all", "--include-credentials", "--yes", "--json")
    assert run.code == 0, run.all
    assert not pem.exists()
    archived = list(
        (project / "backend/data/archives").glob(f"*-reset*/files/{FOLDER}/demo/kalshi.pem")
    )
    assert [p.read_bytes() for p in archived] == [content]


def test_the_key_never_appears_in_any_output_or_log(
    cli: Cli, project: Path, tmp_path: Path, keys: dict[str, bytes]
) -> None:
    key = write_key(tmp_path, keys["rsa2048"])
    runs = [
        add(cli, key, "--dry-run"),
        add(cli, key, "--dry-run", "--json", "-v"),
        add(cli, key, "-v"),
        add(cli, "-", "--json", "--yes", input=keys["rsa2048"].decode()),
        add(cli, write_key(tmp_path, keys["other"], "o.pem"), "--yes", "-v"),
        add(cli, write_key(tmp_path, keys["truncated"], "t.pem")),
        add(cli, write_key(tmp_path, keys["truncated"], "t.pem"), "--json"),
        cli("credentials", "status", "-v"),
        cli("credentials", "status", "--json"),
        cli("check", "--skip-db-check", "-v"),
        cli("check", "--skip-db-check", "--json"),
        cli("credentials", "remove", "--env", "demo", "--yes", "--json"),
    ]
    texts = [run.all for run in runs]
    texts += [
        path.read_text(errors="replace")
        for folder in (project / "logs", project / "backend/data/archives")
        if folder.exists()
        for path in folder.rglob("*")
        if path.is_file() and path.suffix in (".log", ".json")
    ]
    lines = body_lines(keys["rsa2048"]) + body_lines(keys["other"]) + body_lines(keys["truncated"])
    assert len(lines) > 40
    for text in texts:
        for line in lines:
            assert line not in text
    assert any(KEY_ID in text for text in texts)


def test_status_of_a_fresh_project_is_two_warnings(cli: Cli, project: Path) -> None:
    run = cli("credentials", "status", "--json")
    assert run.code == 0
    states = {
        c["data"]["env"]: (c["status"], c["data"]["state"]) for c in run.json()["result"]["checks"]
    }
    assert states == {"prod": ("warn", "absent"), "demo": ("warn", "absent")}
    assert tree_snapshot(project) == {}
    assert json.loads(run.out)["exit_code"] == 0
    other = cli("--user", "user_0002", "credentials", "status", "--env", "demo", "--json")
    assert "--user user_0002" in other.json()["result"]["checks"][0]["fix"]


@pytest.mark.parametrize("kind", ["truncated", "ec", "small", "encrypted"])
def test_a_service_is_refused_a_key_that_does_not_parse(
    cli: Cli, project: Path, tmp_path: Path, keys: dict[str, bytes], kind: str
) -> None:
    """get_kalshi_credentials checks the key as `credentials status` does: a broken key fails
    at the service's start, naming the fix, not at its first signed request."""
    assert add(cli, write_key(tmp_path, keys["rsa2048"])).code == 0
    (project / FOLDER / "demo/kalshi.pem").write_bytes(keys[kind])
    with pytest.raises(CredentialsError, match="credentials add"):
        get_kalshi_credentials("demo", root=project)


def test_a_service_is_refused_links_out_of_the_project_and_ambiguous_ids(
    cli: Cli, project: Path, tmp_path: Path, keys: dict[str, bytes]
) -> None:
    assert add(cli, write_key(tmp_path, keys["rsa2048"])).code == 0
    demo = project / FOLDER / "demo"
    outside = tmp_path / "outside"
    outside.mkdir()
    auth = demo / "kalshi-auth.txt"
    (outside / "auth.txt").write_text(f"key:{OTHER_ID}\n")
    auth.rename(tmp_path / "saved-auth.txt")
    auth.symlink_to(outside / "auth.txt")
    with pytest.raises(CredentialsError, match="is a symlink"):
        get_kalshi_credentials("demo", root=project)
    auth.unlink()
    auth.write_text(f"key:{KEY_ID}\nkey:{OTHER_ID}\n")
    auth.chmod(0o600)
    with pytest.raises(CredentialsError, match="more than one `key:` line"):
        get_kalshi_credentials("demo", root=project)
    auth.write_text("key:" + "0" * (70 << 10) + "\n")
    with pytest.raises(CredentialsError, match="cannot be read"):
        get_kalshi_credentials("demo", root=project)
    (tmp_path / "saved-auth.txt").replace(auth)
    demo.rename(outside / "demo")
    demo.symlink_to(outside / "demo")
    with pytest.raises(CredentialsError, match="is a symlink, not the folder itself"):
        get_kalshi_credentials("demo", root=project)


def test_key_material_given_as_the_path_is_refused_and_never_echoed(
    cli: Cli, keys: dict[str, bytes]
) -> None:
    pem = keys["rsa2048"].decode()
    for given in (pem, body_lines(keys["rsa2048"])[3]):
        run = add(cli, given, "--json")
        assert run.code == 2 and "key material, not a path" in run.all
        assert not any(line in run.all for line in body_lines(keys["rsa2048"]))


def test_an_email_longer_than_an_address_can_be_is_bad_input(
    cli: Cli, project: Path, tmp_path: Path, keys: dict[str, bytes]
) -> None:
    run = add(cli, write_key(tmp_path, keys["rsa2048"]), "--email", "a" * 300 + "@b.co")
    assert run.code == 2 and not (project / FOLDER / "demo/kalshi.pem").exists()


@pytest.mark.slow
def test_a_replacement_killed_anywhere_never_pairs_the_new_key_with_the_old_id(
    tmp_path: Path, keys: dict[str, bytes]
) -> None:
    """SIGKILL before each file-changing call of `credentials add --yes` over an existing pair:
    the entry is the old pair, the new pair, or broken; never a valid-looking mix."""
    old_key, new_key = write_key(tmp_path, keys["rsa2048"]), write_key(tmp_path, keys["other"], "n")
    template = tmp_path / "template"
    template.mkdir()
    cli = Cli(template)
    assert cli("--non-interactive", "--skip-db-check", "--host", "127.0.0.1").code == 0
    assert add(cli, old_key).code == 0
    count_file = tmp_path / "count"
    args = ("credentials", "add", "--env", "demo", "--key-id", OTHER_ID, "--yes")
    shutil.copytree(template, tmp_path / "counted", symlinks=True)
    counted = Cli(tmp_path / "counted").process(
        *args, "--private-key-file", str(new_key),
        env={"RECIO_TEST_KILL_AT": "0", "RECIO_TEST_KILL_COUNT": str(count_file)},
    )  # fmt: skip
    assert counted.code == 0, counted.all
    for kill_at in range(1, int(count_file.read_text()) + 1):
        project = tmp_path / f"run{kill_at}"
        shutil.copytree(template, project, symlinks=True)
        killed = Cli(project).process(
            *args, "--private-key-file", str(new_key), env={"RECIO_TEST_KILL_AT": str(kill_at)}
        )
        assert killed.code == -9, (kill_at, killed.all)
        try:
            found = get_kalshi_credentials("demo", root=project)
        except CredentialsError:
            continue  # broken, and said so: the fix is to add again
        key = Path(found.private_key_path).read_bytes()
        assert (found.key_id, key) in ((KEY_ID, keys["rsa2048"]), (OTHER_ID, keys["other"]))
