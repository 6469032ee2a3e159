"""What the studio's tests, load benchmark and screenshot script share: a free local port and the
flags for Debian's headless chromium (never a downloaded browser)."""

from __future__ import annotations

import socket

# Headless, no sandbox (root in CI), no GPU, and nothing that reaches the network on its own.
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run"]


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port on `host` that nothing listens on right now (the OS picks it)."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]
