"""A local S3-compatible server for the object-storage tests: moto's server on 127.0.0.1.

Started with `INITIAL_NO_AUTH_ACTION_COUNT`, so that after the first IAM calls (creating a user, its
access key and an allow-all S3 policy) moto checks credentials as S3 does: a wrong key is refused.
"""
from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.server import free_port

SETUP_ACTIONS = 3  # create_user, create_access_key, put_user_policy: unauthenticated; then keys are checked
POLICY = '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"*"}]}'


@dataclass
class S3Server:
    endpoint: str
    key: str
    secret: str
    proc: subprocess.Popen

    def env(self, **overrides: str) -> dict[str, str]:
        """The environment a gateway needs to read this server's buckets."""
        return {"S3_ENDPOINT": self.endpoint, "AWS_ACCESS_KEY_ID": self.key, "AWS_SECRET_ACCESS_KEY": self.secret,
                "AWS_REGION": "us-east-1", **overrides}

    def client(self):
        import boto3

        return boto3.client("s3", endpoint_url=self.endpoint, aws_access_key_id=self.key,
                            aws_secret_access_key=self.secret, region_name="us-east-1")

    def upload(self, folder: Path, bucket: str, prefix: str) -> None:
        client = self.client()
        for path in sorted(Path(folder).rglob("*")):
            if path.is_file():
                client.upload_file(str(path), bucket, f"{prefix}/{path.relative_to(folder).as_posix()}")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def start_s3_server(log_path: Path) -> S3Server:
    import boto3

    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    env = {**os.environ, "INITIAL_NO_AUTH_ACTION_COUNT": str(SETUP_ACTIONS)}
    proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                            stdout=open(log_path, "w"), stderr=subprocess.STDOUT, env=env)
    deadline = time.monotonic() + 60
    while True:
        try:
            httpx.get(f"{endpoint}/moto-api/", timeout=1)
            break
        except httpx.HTTPError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                raise RuntimeError(f"moto server did not start:\n{log_path.read_text()}") from None
            time.sleep(0.2)
    iam = boto3.client("iam", endpoint_url=endpoint, aws_access_key_id="setup", aws_secret_access_key="setup",
                       region_name="us-east-1")
    iam.create_user(UserName="gateway")
    key = iam.create_access_key(UserName="gateway")["AccessKey"]
    iam.put_user_policy(UserName="gateway", PolicyName="s3", PolicyDocument=POLICY)
    return S3Server(endpoint, key["AccessKeyId"], key["SecretAccessKey"], proc)
