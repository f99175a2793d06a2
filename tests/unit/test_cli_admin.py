"""``moorage admin``: through click's runner on a data folder, and once as a real process."""

from __future__ import annotations

import asyncio
import os
import re
import stat
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from moorage.cli import main
from moorage.iam.secrets import KeyRing, load_master_key
from moorage.services.authentication import ApiKeyAuthenticator
from moorage.storage.metadata.sql.store import open_sql_metadata_store
from tests.unit.services.test_authentication import SIGNED_AT, signed

ALLOW_PULL = (
    '{"Version": "2012-10-17", "Statement": [{"Effect": "Allow",\n'
    '  "Action": "ecr:BatchGetImage", "Resource": "*"}]}\n'
)
Admin = Callable[..., Result]


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture
def admin(data_dir: Path) -> Admin:
    """Run ``moorage admin ARGS --data-dir DATA`` in a clean environment."""
    runner = CliRunner()
    clean = {name: None for name in os.environ if name.startswith("MOORAGE_")}

    def run(*args: str, env: dict[str, str] | None = None, input: str | None = None) -> Result:
        return runner.invoke(
            main,
            ["admin", *args, "--data-dir", str(data_dir)],
            env={**clean, **(env or {})},
            input=input,
        )

    return run


def ok(result: Result) -> str:
    assert result.exit_code == 0, (result.output, result.stderr)
    return result.stdout


def one_line_error(result: Result, text: str) -> None:
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("moorage: error: "), result.stderr
    assert text in lines[0]


def printed_key(output: str) -> tuple[str, str]:
    key_id = re.search(r"^Access key id: +(AKIA[A-Z0-9]{16})$", output, re.M)
    secret = re.search(r"^Secret access key: +(\S{40})$", output, re.M)
    assert key_id is not None
    assert secret is not None
    return key_id.group(1), secret.group(1)


def test_init_creates_an_account_an_admin_and_a_key_and_says_how_to_use_it(
    admin: Admin, data_dir: Path
) -> None:
    output = ok(admin("init"))
    key_id, secret = printed_key(output)
    # The registry_id setting's account (123456789012 unless configured).
    assert "Account 123456789012 (moorage): created" in output
    assert "User admin (arn:aws:iam::123456789012:user/admin): created" in output
    for line in (
        f"  aws configure set aws_access_key_id {key_id} --profile moorage",
        f"  aws configure set aws_secret_access_key {secret} --profile moorage",
        "  aws configure set region us-east-1 --profile moorage",
        "  export AWS_PROFILE=moorage AWS_ENDPOINT_URL_ECR=http://127.0.0.1:5000",
        f"  export AWS_ACCESS_KEY_ID={key_id} AWS_SECRET_ACCESS_KEY={secret} "
        "AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1 "
        "AWS_ENDPOINT_URL_ECR=http://127.0.0.1:5000",
        "  aws ecr get-login-password | docker login --username AWS --password-stdin "
        "127.0.0.1:5000",
    ):
        assert line in output.splitlines()
    assert "registry_id =" not in output  # it is the server's default account already
    assert stat.S_IMODE((data_dir / "master.key").stat().st_mode) == 0o600
    # The secret is never shown again.
    assert secret not in ok(admin("access-key", "list", "admin"))
    assert ok(admin("policy", "list", "admin")).split() == ["AdministratorAccess"]


def test_the_printed_secret_signs_requests_the_server_accepts(admin: Admin, data_dir: Path) -> None:
    key_id, secret = printed_key(ok(admin("init", "--account-id", "123456789012")))

    async def authenticate() -> str | None:
        keys = KeyRing.derive(load_master_key(None, data_dir))
        store = await open_sql_metadata_store(f"sqlite+aiosqlite:///{data_dir / 'moorage.db'}")
        try:
            api = ApiKeyAuthenticator(
                store, keys.access_key_secrets, lambda: SIGNED_AT, regions=frozenset({"us-east-1"})
            )
            return (await api.authenticate(signed(key_id, secret), None)).arn
        finally:
            await store.close()

    assert asyncio.run(authenticate()) == "arn:aws:iam::123456789012:user/admin"


def test_init_twice_refuses_unless_a_new_key_is_asked_for(admin: Admin) -> None:
    first_key, _ = printed_key(ok(admin("init")))
    one_line_error(admin("init"), "already has its admin user; pass --force-new-key")
    assert ok(admin("access-key", "list", "admin")).count("AKIA") == 1
    output = ok(admin("init", "--force-new-key"))
    assert ": already there" in output
    assert "User admin (" in output
    second_key, _ = printed_key(output)
    assert second_key != first_key
    listed = ok(admin("access-key", "list", "admin"))
    assert first_key in listed
    assert second_key in listed
    one_line_error(admin("init", "--force-new-key"), "AccessKeysPerUser: 2")


def test_init_uses_the_configured_account(admin: Admin) -> None:
    output = ok(admin("init", "--name", "Platform", env={"MOORAGE_REGISTRY_ID": "111122223333"}))
    assert "Account 111122223333 (Platform): created" in output
    assert "registry_id =" not in output  # it already is the server's default
    assert ok(admin("account", "list")) == "111122223333\tPlatform\n"


def test_endpoint_follows_the_settings(admin: Admin) -> None:
    env = {"MOORAGE_HOST": "0.0.0.0", "MOORAGE_PORT": "5443", "MOORAGE_REGION": "eu-west-1"}
    output = ok(admin("init", env=env))
    assert "AWS_ENDPOINT_URL_ECR=http://127.0.0.1:5443" in output
    assert "aws configure set region eu-west-1 --profile moorage" in output
    template = {"MOORAGE_REGISTRY_HOST": "{registry_id}.dkr.{region}.example.test"}
    output = ok(admin("init", "--account-id", "444455556666", env={**env, **template}))
    assert "AWS_ENDPOINT_URL_ECR=http://444455556666.dkr.eu-west-1.example.test" in output


def test_users(admin: Admin) -> None:
    ok(admin("init", "--account-id", "123456789012"))
    assert ok(admin("user", "create", "ci-bot", "--path", "/ci/")) == (
        "arn:aws:iam::123456789012:user/ci/ci-bot\n"
    )
    rows = [line.split("\t") for line in ok(admin("user", "list")).splitlines()]
    assert [row[0] for row in rows] == ["admin", "ci-bot"]
    assert all(re.fullmatch(r"AIDA[A-Z0-9]{17}", row[1]) for row in rows)
    assert rows[1][2] == "arn:aws:iam::123456789012:user/ci/ci-bot"
    one_line_error(admin("user", "create", "ci-bot"), "User with name ci-bot already exists")
    one_line_error(admin("user", "create", "bad name"), "regular expression")
    assert ok(admin("user", "delete", "ci-bot")) == "deleted user ci-bot\n"
    one_line_error(admin("user", "delete", "ci-bot"), "The user with name ci-bot cannot be found.")


def test_access_keys(admin: Admin) -> None:
    ok(admin("init"))
    ok(admin("user", "create", "bot"))
    key_id, _ = printed_key(ok(admin("access-key", "create", "bot")))
    [row] = [line.split("\t") for line in ok(admin("access-key", "list", "bot")).splitlines()]
    assert row[:2] == [key_id, "Active"]
    assert ok(admin("access-key", "deactivate", "bot", key_id)) == f"deactivated {key_id}\n"
    assert f"{key_id}\tInactive\t" in ok(admin("access-key", "list", "bot"))
    assert ok(admin("access-key", "activate", "bot", key_id)) == f"activated {key_id}\n"
    one_line_error(admin("access-key", "delete", "admin", key_id), "cannot be found")
    assert ok(admin("access-key", "delete", "bot", key_id)) == f"deleted {key_id}\n"
    assert ok(admin("access-key", "list", "bot")) == ""
    one_line_error(admin("access-key", "create", "nobody"), "nobody cannot be found")


def test_policies_from_a_file_and_from_stdin(admin: Admin, tmp_path: Path) -> None:
    ok(admin("init"))
    ok(admin("user", "create", "puller"))
    document = tmp_path / "pull.json"
    document.write_text(ALLOW_PULL)
    assert ok(admin("policy", "put", "puller", "pull", str(document))) == (
        "put policy pull on user puller\n"
    )
    assert ok(admin("policy", "get", "puller", "pull")) == ALLOW_PULL  # exactly as put
    ok(admin("policy", "put", "puller", "also", "-", input=ALLOW_PULL))
    assert ok(admin("policy", "list", "puller")).split() == ["also", "pull"]
    assert ok(admin("policy", "delete", "puller", "also")) == "deleted policy also of user puller\n"
    one_line_error(admin("policy", "get", "puller", "also"), "cannot be found")
    one_line_error(
        admin("policy", "put", "puller", "bad", "-", input='{"Statement": ['),
        "policy is not valid JSON",
    )
    one_line_error(
        admin(
            "policy",
            "put",
            "puller",
            "bad",
            "-",
            input='{"Statement": {"Effect": "Allow", "Action": "*"}}',
        ),
        "Resource",
    )
    missing = admin("policy", "put", "puller", "x", str(tmp_path / "missing.json"))
    assert missing.exit_code == 2  # click's own usage error


def test_with_the_placeholder_account_init_picks_a_random_one(admin: Admin) -> None:
    placeholder = {"MOORAGE_REGISTRY_ID": "000000000000"}
    output = ok(admin("init", env=placeholder))
    account = re.search(r"^Account (\d{12}) \(moorage\): created$", output, re.M)
    assert account is not None
    registry_id = account.group(1)
    assert registry_id != "000000000000"
    assert f'registry_id = "{registry_id}" (MOORAGE_REGISTRY_ID={registry_id})' in output
    # Later commands, and a second init, find that account: no second admin appears.
    assert ok(admin("user", "list", env=placeholder)).startswith("admin\t")
    one_line_error(admin("init", env=placeholder), f"account {registry_id} already has its admin")
    assert ok(admin("account", "list")).count("\n") == 1


def test_the_account_must_be_clear(admin: Admin) -> None:
    one_line_error(
        admin("user", "list"), "account 123456789012 does not exist (moorage admin init creates it)"
    )
    placeholder = {"MOORAGE_REGISTRY_ID": "000000000000"}
    one_line_error(
        admin("user", "list", env=placeholder), "there is no account yet: run moorage admin init"
    )
    ok(admin("init", "--account-id", "111111111111"))
    ok(admin("init", "--account-id", "222222222222"))
    one_line_error(
        admin("user", "list", env=placeholder), "there are 2 accounts: choose one with --account-id"
    )
    one_line_error(admin("init", env=placeholder), "choose one with --account-id")
    assert ok(admin("user", "list", "--account-id", "222222222222")).startswith("admin\t")
    one_line_error(admin("user", "list", "--account-id", "12"), "12 digits")


def test_a_malformed_master_key_is_a_one_line_error(admin: Admin, data_dir: Path) -> None:
    one_line_error(admin("init", env={"MOORAGE_MASTER_KEY": "too-short"}), "MOORAGE_MASTER_KEY")
    data_dir.mkdir(parents=True, exist_ok=True)
    (data_dir / "master.key").write_text("not a key\n")
    one_line_error(admin("init"), "is not a master key")


def test_as_a_process(tmp_path: Path) -> None:
    """The installed command, as an operator runs it: exit codes and streams."""
    data_dir = str(tmp_path / "data")
    env = {k: v for k, v in os.environ.items() if not k.startswith("MOORAGE_")}

    def moorage(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "moorage", "admin", *args, "--data-dir", data_dir],
            capture_output=True,
            text=True,
            timeout=60,
            env=env,
            check=False,
        )

    created = moorage("init", "--account-id", "123456789012")
    assert created.returncode == 0, created.stderr
    assert created.stderr == ""
    printed_key(created.stdout)
    again = moorage("init", "--account-id", "123456789012")
    assert again.returncode == 2
    assert again.stdout == ""
    assert again.stderr.count("\n") == 1
    assert again.stderr.startswith("moorage: error: account 123456789012 already has its admin")
    listed = moorage("user", "list")
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.startswith("admin\tAIDA")
