"""Refuse every network connection that leaves this machine, so a test run proves the course is offline.

Loopback stays open: Jupyter kernels talk to pytest over 127.0.0.1. Installed in the pytest
process by ``conftest.py`` and in every child Python (notebook kernels, worker processes)
by ``sitecustomize.py`` in this folder, which ``conftest.py`` puts on ``PYTHONPATH``.
"""

from __future__ import annotations

import ipaddress
import socket

ENV_FLAG = "MMCOURSE_OFFLINE"


class NetworkBlocked(OSError):
    """Raised when code under test tries to reach the network."""


def _is_local_host(host) -> bool:
    if host is None or host in ("", "localhost", "localhost.localdomain"):
        return True
    if isinstance(host, bytes):
        host = host.decode(errors="replace")
    try:
        return ipaddress.ip_address(str(host).split("%")[0]).is_loopback
    except ValueError:
        return False


def _refuse(what: str, host, port=None) -> None:
    target = f"{host}:{port}" if port is not None else str(host)
    raise NetworkBlocked(
        f"network access is blocked while the course's tests run ({what} {target}); "
        f"the course must work offline: ship the data in data/ or generate it from a seed"
    )


def install() -> None:
    """Patch the socket module; calling it twice is harmless."""
    if getattr(socket, "_mmcourse_offline", False):
        return
    real_connect, real_connect_ex = socket.socket.connect, socket.socket.connect_ex
    real_sendto, real_getaddrinfo = socket.socket.sendto, socket.getaddrinfo

    def is_remote(sock, address) -> bool:
        return sock.family in (socket.AF_INET, socket.AF_INET6) and not _is_local_host(address[0])

    def connect(self, address):
        if is_remote(self, address):
            _refuse("connect to", *address[:2])
        return real_connect(self, address)

    def connect_ex(self, address):
        if is_remote(self, address):
            _refuse("connect to", *address[:2])
        return real_connect_ex(self, address)

    def sendto(self, data, *args):
        address = args[-1]
        if is_remote(self, address):
            _refuse("send to", *address[:2])
        return real_sendto(self, data, *args)

    def getaddrinfo(host, port, *args, **kwargs):
        if not _is_local_host(host):
            _refuse("look up", host, port)
        return real_getaddrinfo(host, port, *args, **kwargs)

    socket.socket.connect = connect
    socket.socket.connect_ex = connect_ex
    socket.socket.sendto = sendto
    socket.getaddrinfo = getaddrinfo
    socket._mmcourse_offline = True
