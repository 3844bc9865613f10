"""The test run refuses the network, in this process and in every Python it starts."""

import socket
import subprocess
import sys
import textwrap

import nbformat
import pytest
from nbclient import NotebookClient

import offline_guard

# 203.0.113.0/24 is TEST-NET-3: reserved for documentation, never a real host.
REMOTE = ("203.0.113.7", 80)

CHILD = textwrap.dedent(
    """
    import socket
    server = socket.socket(); server.bind(("127.0.0.1", 0)); server.listen(1)
    socket.create_connection(server.getsockname(), timeout=5).close()
    print("loopback ok")
    try:
        socket.create_connection((%r, %d), timeout=5)
    except OSError as error:
        print(type(error).__name__, error)
    """
) % REMOTE


def test_remote_connection_refused_in_this_process():
    with pytest.raises(offline_guard.NetworkBlocked, match="network access is blocked"):
        socket.create_connection(REMOTE, timeout=5)
    with pytest.raises(offline_guard.NetworkBlocked, match="look up example.org"):
        socket.getaddrinfo("example.org", 443)


def test_loopback_still_works():
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        with socket.create_connection(server.getsockname(), timeout=5):
            pass


def test_child_pythons_are_offline_too():
    result = subprocess.run([sys.executable, "-c", CHILD], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "loopback ok" in result.stdout
    assert "NetworkBlocked network access is blocked" in result.stdout


def test_notebook_kernels_are_offline(tmp_path):
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(CHILD)])
    NotebookClient(notebook, timeout=60, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    text = "".join(output.get("text", "") for output in notebook.cells[0].outputs)
    assert "loopback ok" in text
    assert "NetworkBlocked network access is blocked" in text
