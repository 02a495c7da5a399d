"""A Tailer service-account key where cryptography cannot be imported (eighteenth independent pass, b).

cryptography is imported only for a service-account key since the seventh memory pass, when the catalog is loaded:
without it (a broken install, a slimmed image), ``check`` and ``run`` ended in a traceback, "ModuleNotFoundError: No
module named 'cryptography'" raised out of the catalog's validation, instead of a problem naming the connection and
what to install. Run through the real CLI, cryptography made unimportable in its process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

ROOT = Path(__file__).resolve().parents[2]
NO_CRYPTOGRAPHY = (
    "import sys\n"
    "for name in ('cryptography', 'cryptography.hazmat', 'cryptography.hazmat.primitives',\n"
    "             'cryptography.hazmat.primitives.asymmetric'):\n"
    "    sys.modules[name] = None  # import raises ImportError, as where the package is missing\n"
    "from bot.cli import main\n"
    "sys.exit(main(sys.argv[1:]))\n"
)


def _key() -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption()).decode()
    return json.dumps({"type": "service_account", "client_email": "bot@p.iam.gserviceaccount.com",
                       "private_key_id": "k1", "private_key": pem})


@pytest.mark.parametrize("given", ["service_account_file", "service_account_json"])
def test_a_service_account_key_without_cryptography_is_a_problem_not_a_traceback(tmp_path: Path, given: str) -> None:
    key = _key()
    (tmp_path / "key.json").write_text(key)
    credential = ("service_account_file: " + str(tmp_path / "key.json") if given == "service_account_file"
                  else "service_account_json: ${TAILER_KEY}")
    (tmp_path / "pipelines.yml").write_text(
        'version: 1\ndefaults: {channel: "C0GENERAL", owners: ["U0ALICE"], allow_run: ["*"]}\n'
        f"connections:\n  tailer:\n    provider: tailer\n    base_url: http://127.0.0.1:9/\n    {credential}\n"
        "pipelines:\n  t1: {connection: tailer, account: '000099', environment: DEV, "
        "configuration_type: table-to-table, configuration_id: c1}\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "TAILER"))}
    env["TAILER_KEY"] = key
    result = subprocess.run([sys.executable, "-c", NO_CRYPTOGRAPHY, "check", "--catalog-only", "--catalog",
                             "pipelines.yml"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
    said = result.stdout + result.stderr
    assert result.returncode == 1, said
    assert "Traceback" not in said, said
    assert "cryptography" in said and "connections.tailer" in said, said
    assert "PRIVATE KEY" not in said, said
