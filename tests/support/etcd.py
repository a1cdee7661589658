"""A real etcd server for tests: started on free loopback ports, always cleaned up."""

from __future__ import annotations

import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any, Self

__all__ = [
    "APP_PASSWORD",
    "APP_USER",
    "ROOT_PASSWORD",
    "EtcdCluster",
    "EtcdServer",
    "free_port",
]

_START_TIMEOUT_S = 20.0
# Throwaway credentials of the throwaway test servers.
ROOT_PASSWORD = "root-secret"  # noqa: S105
APP_USER = "app"
APP_PASSWORD = "app-secret"  # noqa: S105
_SAN_CONFIG = """[req]
distinguished_name = dn
[dn]
[ext]
subjectAltName = IP:127.0.0.1
extendedKeyUsage = serverAuth
"""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class EtcdServer:
    """
    One single-member etcd on 127.0.0.1, with its own ports and temporary data dir.

    ``restart()`` keeps the ports and the data, like a real etcd restart. ``pause()``
    freezes the process (SIGSTOP) the way a hung or partitioned etcd looks to clients.
    """

    def __init__(
        self,
        *extra_args: str,
        tls: bool = False,
        name: str = "test",
        cluster: str | None = None,
        ports: tuple[int, int] | None = None,
    ) -> None:
        if shutil.which("etcd") is None:
            msg = "etcd is not on PATH: install Debian's etcd-server"
            raise RuntimeError(msg)
        self.client_port, self.peer_port = ports or (free_port(), free_port())
        self.name = name
        self._cluster = cluster
        self.base_dir = Path(tempfile.mkdtemp(prefix="cbcontrol-etcd-"))
        self.data_dir = self.base_dir / "data"
        self.log_path = self.base_dir / "etcd.log"
        self._extra_args = extra_args
        self.ca_cert: Path | None = None
        if tls:
            self._make_certificates()
        self._process: subprocess.Popen[bytes] | None = None
        self._paused = False
        self.root_password: str | None = None

    @property
    def endpoint(self) -> str:
        """``"127.0.0.1:PORT"`` of the client port."""
        return f"127.0.0.1:{self.client_port}"

    @property
    def endpoints(self) -> list[tuple[str, int]]:
        """The client endpoint as ``[(host, port)]``."""
        return [("127.0.0.1", self.client_port)]

    @property
    def running(self) -> bool:
        """Whether the process is alive (paused counts as alive)."""
        return self._process is not None and self._process.poll() is None

    def _make_certificates(self) -> None:
        """A CA and a server certificate for 127.0.0.1, made with openssl."""
        tls = self.base_dir / "tls"
        tls.mkdir()
        (tls / "san.cnf").write_text(_SAN_CONFIG)
        commands = [
            (
                "req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=cbcontrol-test-ca"
                " -keyout ca.key -out ca.crt"
            ),
            (
                "req -newkey rsa:2048 -nodes -subj /CN=127.0.0.1 -config san.cnf"
                " -keyout server.key -out server.csr"
            ),
            (
                "x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial"
                " -days 1 -extfile san.cnf -extensions ext -out server.crt"
            ),
        ]
        for command in commands:
            subprocess.run(
                ["openssl", *command.split()], cwd=tls, check=True, capture_output=True
            )
        self.ca_cert = tls / "ca.crt"

    def start(self) -> None:
        """Start etcd and wait, bounded, until it answers its health check."""
        scheme = "http" if self.ca_cert is None else "https"
        client_url = f"{scheme}://{self.endpoint}"
        peer_url = f"http://127.0.0.1:{self.peer_port}"
        args = [
            "etcd",
            f"--name={self.name}",
            f"--data-dir={self.data_dir}",
            f"--listen-client-urls={client_url}",
            f"--advertise-client-urls={client_url}",
            f"--listen-peer-urls={peer_url}",
            f"--initial-advertise-peer-urls={peer_url}",
            f"--initial-cluster={self._cluster or f'{self.name}={peer_url}'}",
            # A fast election keeps start, restart and leader changes short.
            "--heartbeat-interval=20",
            "--election-timeout=200",
            *self._extra_args,
        ]
        if self.ca_cert is not None:
            tls = self.ca_cert.parent
            args += [
                f"--cert-file={tls / 'server.crt'}",
                f"--key-file={tls / 'server.key'}",
            ]
        with self.log_path.open("ab") as log:
            self._process = subprocess.Popen(
                args, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
            )
        deadline = time.monotonic() + _START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                msg = f"etcd exited with {self._process.returncode}: {self.log_tail()}"
                raise RuntimeError(msg)
            if self._healthy():
                return
            time.sleep(0.05)
        self.kill()
        msg = f"etcd was not healthy within {_START_TIMEOUT_S}s: {self.log_tail()}"
        raise RuntimeError(msg)

    def _healthy(self) -> bool:
        if self._cluster is not None:  # a member is healthy only with a quorum
            return self._listening()
        scheme = "http" if self.ca_cert is None else "https"
        context = None if self.ca_cert is None else ssl.create_default_context()
        if context is not None:
            context.load_verify_locations(self.ca_cert)
        url = f"{scheme}://{self.endpoint}/health"
        try:
            with urllib.request.urlopen(url, timeout=1, context=context) as response:  # noqa: S310 (http or https only)
                return b'"true"' in response.read()
        except OSError:
            return False

    def _listening(self) -> bool:
        with socket.socket() as sock:
            sock.settimeout(0.2)
            return sock.connect_ex(("127.0.0.1", self.client_port)) == 0

    def log_tail(self, lines: int = 20) -> str:
        """The last lines of etcd's log."""
        text = self.log_path.read_text(errors="replace")
        return "\n".join(text.splitlines()[-lines:])

    def _signal(self, signum: int) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.send_signal(signum)

    def pause(self) -> None:
        """Freeze etcd with SIGSTOP: connections stay open, nothing answers."""
        self._signal(signal.SIGSTOP)
        self._paused = True

    def resume(self) -> None:
        """Let a paused etcd run again (SIGCONT)."""
        self._signal(signal.SIGCONT)
        self._paused = False

    def stop(self) -> None:
        """Stop etcd cleanly (SIGTERM, then SIGKILL after 10 s)."""
        if self._process is None:
            return
        self.resume()
        self._signal(signal.SIGTERM)
        try:
            self._process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.kill()
        self._process = None

    def kill(self) -> None:
        """Kill etcd at once (SIGKILL), as a crash would."""
        if self._process is None:
            return
        self.resume()
        self._signal(signal.SIGKILL)
        self._process.wait(timeout=10)
        self._process = None

    def restart(self) -> None:
        """Stop (if running) and start again with the same ports and data dir."""
        self.stop()
        self.start()

    def wipe(self) -> None:
        """Lose every key: stop, delete the data, start anew on the same ports."""
        self.kill()
        shutil.rmtree(self.data_dir, ignore_errors=True)
        self.start()

    def close(self) -> None:
        """Kill etcd and delete its data dir and log."""
        self.kill()
        shutil.rmtree(self.base_dir, ignore_errors=True)

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- administration through etcd's gRPC API (no etcdctl needed) ------------------

    def _admin(self) -> tuple[Any, Any, tuple[tuple[str, str], ...]]:
        import grpc
        from pyetcd import etcdrpc

        channel = grpc.insecure_channel(self.endpoint)
        metadata: tuple[tuple[str, str], ...] = ()
        if self.root_password is not None:
            request = etcdrpc.AuthenticateRequest(
                name="root", password=self.root_password
            )
            token = etcdrpc.AuthStub(channel).Authenticate(request, timeout=5).token
            metadata = (("token", token),)
        return channel, etcdrpc, metadata

    def revision(self) -> int:
        """The current revision of the store."""
        channel, rpc, md = self._admin()
        with channel:
            request = rpc.RangeRequest(key=b"\0", count_only=True)
            response = rpc.KVStub(channel).Range(request, timeout=5, metadata=md)
            return int(response.header.revision)

    def compact(self) -> int:
        """Compact the history up to the current revision; return that revision."""
        revision = self.revision()
        channel, rpc, md = self._admin()
        with channel:
            request = rpc.CompactionRequest(revision=revision, physical=True)
            rpc.KVStub(channel).Compact(request, timeout=5, metadata=md)
        return revision

    def enable_auth(self, root_password: str) -> None:
        """Create the root user and turn authentication on."""
        channel, rpc, _ = self._admin()
        with channel:
            auth = rpc.AuthStub(channel)
            auth.UserAdd(
                rpc.AuthUserAddRequest(name="root", password=root_password), timeout=5
            )
            auth.UserGrantRole(
                rpc.AuthUserGrantRoleRequest(user="root", role="root"), timeout=5
            )
            auth.AuthEnable(rpc.AuthEnableRequest(), timeout=5)
        self.root_password = root_password

    def add_user(self, name: str, password: str, *, readwrite_prefix: str) -> None:
        """Add a user whose role may read and write every key under a prefix."""
        from pyetcd.etcdrpc import auth_pb2

        channel, rpc, md = self._admin()
        with channel:
            auth = rpc.AuthStub(channel)
            role = f"{name}-role"
            auth.RoleAdd(rpc.AuthRoleAddRequest(name=role), timeout=5, metadata=md)
            start = readwrite_prefix.encode()
            end = start[:-1] + bytes([start[-1] + 1])
            permission = auth_pb2.Permission(
                permType=auth_pb2.Permission.READWRITE, key=start, range_end=end
            )
            auth.RoleGrantPermission(
                rpc.AuthRoleGrantPermissionRequest(name=role, perm=permission),
                timeout=5,
                metadata=md,
            )
            auth.UserAdd(
                rpc.AuthUserAddRequest(name=name, password=password),
                timeout=5,
                metadata=md,
            )
            auth.UserGrantRole(
                rpc.AuthUserGrantRoleRequest(user=name, role=role),
                timeout=5,
                metadata=md,
            )


class EtcdCluster:
    """
    Three etcd members on 127.0.0.1, each with its own ports and data dir.

    ``leader()`` names the current leader; ``kill(member)`` and ``start(member)``
    play a member's crash and return.
    """

    def __init__(self, size: int = 3) -> None:
        ports = [(free_port(), free_port()) for _ in range(size)]
        names = [f"m{i}" for i in range(size)]
        cluster = ",".join(
            f"{name}=http://127.0.0.1:{peer}"
            for name, (_, peer) in zip(names, ports, strict=True)
        )
        self.members = [
            EtcdServer(name=name, cluster=cluster, ports=pair)
            for name, pair in zip(names, ports, strict=True)
        ]

    @property
    def endpoints(self) -> list[tuple[str, int]]:
        """Every member's client endpoint."""
        return [("127.0.0.1", m.client_port) for m in self.members]

    def leader(self) -> EtcdServer:
        """The member that leads now (waits, bounded, for an election)."""
        import grpc
        from pyetcd import etcdrpc

        deadline = time.monotonic() + _START_TIMEOUT_S
        while time.monotonic() < deadline:
            for member in self.members:
                if not member.running:
                    continue
                try:
                    with grpc.insecure_channel(member.endpoint) as channel:
                        status = etcdrpc.MaintenanceStub(channel).Status(
                            etcdrpc.StatusRequest(), timeout=1
                        )
                except grpc.RpcError:
                    continue
                if status.leader == status.header.member_id:
                    return member
            time.sleep(0.05)
        msg = "no etcd member became the leader"
        raise RuntimeError(msg)

    def __enter__(self) -> Self:
        # Members wait for each other: start all, then check they answer.
        for member in self.members:
            member.start()
        self.leader()
        return self

    def __exit__(self, *exc_info: object) -> None:
        for member in self.members:
            member.close()
