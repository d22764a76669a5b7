"""What a process listens on, read from /proc: for the tests that check where roles bind."""

from __future__ import annotations

import os
import socket
from pathlib import Path


def listening(pid: int) -> list[tuple[str, int]]:
    """(address, port) of every listening TCP socket the process `pid` holds."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    found = []
    for table, family in (("tcp", socket.AF_INET), ("tcp6", socket.AF_INET6)):
        for line in Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]:
            fields = line.split()
            local, state, inode = fields[1], fields[3], fields[9]
            if state != "0A" or inode not in inodes:  # 0A: LISTEN
                continue
            address, port = local.split(":")
            raw = bytes.fromhex(address)
            # /proc writes each 32-bit word of the address in the host's byte order.
            words = [raw[i : i + 4][::-1] for i in range(0, len(raw), 4)]
            if socket.htonl(1) == 1:
                words = [raw[i : i + 4] for i in range(0, len(raw), 4)]
            found.append((socket.inet_ntop(family, b"".join(words)), int(port, 16)))
    return found
