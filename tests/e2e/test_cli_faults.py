"""`chute up --fault RULE` / CHUTE_FAULTS: operators rehearse failures against the real endpoint."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from chute.local.embedded import free_port


def _up(work: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "chute.cli", "up", *args],
        cwd=work,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, **(env or {})},
    )


def test_a_bad_rule_is_a_usage_error_naming_it(tmp_path: Path) -> None:
    # WHEN chute up is given a rule with an unknown operation (env) or action (option)
    for args, env, named in [
        ((), {"CHUTE_FAULTS": "s3:GetObjekt:503"}, "CHUTE_FAULTS"),
        (("--fault", "lambda:convert:explode"), {}, "--fault"),
        (("--fault", "s3:GetObject:418"), {}, "--fault"),
    ]:
        process = _up(tmp_path, "--port", str(free_port()), *args, env=env)
        out, _ = process.communicate(timeout=60)
        # THEN it exits 2 before starting, naming where the rule came from and what is wrong
        assert process.returncode == 2, out
        assert named in out and "fault" in out, out


def test_rules_from_the_option_and_the_environment_answer_real_http_errors(
    tmp_path: Path,
) -> None:
    # GIVEN chute up with one SlowDown for GetObject (env) and one InternalError for PutObject
    port = free_port()
    process = _up(
        tmp_path,
        "--port",
        str(port),
        "--grant-port",
        str(free_port()),
        "--fault",
        "s3:PutObject:500:1:rehearsal/",
        env={"CHUTE_FAULTS": "s3:GetObject:503:1:rehearsal/"},
    )
    s3 = boto3.client(
        "s3",
        endpoint_url=f"http://127.0.0.1:{port}",
        region_name="us-east-1",
        aws_access_key_id="x",
        aws_secret_access_key="x",
        config=Config(retries={"total_max_attempts": 1}),  # see every answer
    )
    banner: list[str] = []
    try:
        # (the banner is printed once the runtime is up, its rules armed; its last line is the
        # "try: aws ..." hint)
        assert process.stdout is not None
        while not banner or "try: aws --endpoint-url" not in banner[-1]:
            line = process.stdout.readline()
            if not line:
                pytest.fail(f"chute up did not come up: {''.join(banner)}")
            banner.append(line)
        # WHEN any client writes then reads a key under the prefix, twice
        with pytest.raises(ClientError) as put_error:
            s3.put_object(Bucket="chute-output", Key="rehearsal/x", Body=b"x")
        s3.put_object(Bucket="chute-output", Key="rehearsal/x", Body=b"x")
        with pytest.raises(ClientError) as get_error:
            s3.get_object(Bucket="chute-output", Key="rehearsal/x")
        # THEN the first of each is refused with S3's own error, the second served
        assert put_error.value.response["Error"]["Code"] == "InternalError"
        assert put_error.value.response["ResponseMetadata"]["HTTPStatusCode"] == 500
        assert get_error.value.response["Error"]["Code"] == "SlowDown"
        assert get_error.value.response["ResponseMetadata"]["HTTPStatusCode"] == 503
        assert s3.get_object(Bucket="chute-output", Key="rehearsal/x")["Body"].read() == b"x"
    finally:
        process.send_signal(signal.SIGINT)
        out, _ = process.communicate(timeout=30)
    out = "".join(banner) + out
    # AND the console listed the armed rules and each fault as it fired
    assert "fault armed" in out and "s3:GetObject:503:1:rehearsal/" in out, out
    assert out.count("fault fired") == 2, out
