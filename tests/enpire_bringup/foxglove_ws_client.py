"""A minimal Foxglove WebSocket protocol client for tests (RFC 6455 over a socket; no extra package).

Offers the subprotocols Foxglove offers, `foxglove.sdk.v1` (what foxglove-sdk 0.30 servers require)
and the older `foxglove.websocket.v1`; reads `serverInfo` and `advertise` (JSON text frames), sends
`subscribe`, and reads Message Data binary frames (opcode 0x01, uint32 subscription id, uint64 log time,
payload).
"""
from __future__ import annotations

import base64
import hashlib
import json
import os
import socket
import struct
import time

SUBPROTOCOLS = ('foxglove.sdk.v1', 'foxglove.websocket.v1')
_GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11'


class FoxgloveClient:
    def __init__(self, host: str, port: int, timeout: float = 10.0):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall((f'GET / HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n'
                           f'Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n'
                           f'Sec-WebSocket-Protocol: {", ".join(SUBPROTOCOLS)}\r\n\r\n').encode())
        head = b''
        while b'\r\n\r\n' not in head:
            chunk = self.sock.recv(1)
            if not chunk:
                raise ConnectionError('the server closed during the handshake')
            head += chunk
        lines = head.decode().split('\r\n')
        if ' 101 ' not in lines[0]:
            raise ConnectionError(f'no upgrade: {lines[0]}')
        headers = {k.strip().lower(): v.strip() for k, v in (h.split(':', 1) for h in lines[1:] if ':' in h)}
        accept = base64.b64encode(hashlib.sha1((key + _GUID).encode()).digest()).decode()
        if headers.get('sec-websocket-accept') != accept:
            raise ConnectionError('bad Sec-WebSocket-Accept')
        self.protocol = headers.get('sec-websocket-protocol')
        self.channels: dict[int, dict] = {}
        self.server_info: dict | None = None

    def _read(self, n: int) -> bytes:
        data = b''
        while len(data) < n:
            chunk = self.sock.recv(n - len(data))
            if not chunk:
                raise ConnectionError('the server closed the connection')
            data += chunk
        return data

    def _send(self, opcode: int, payload: bytes) -> None:
        mask = os.urandom(4)
        n = len(payload)
        head = bytes([0x80 | opcode])
        if n < 126:
            head += bytes([0x80 | n])
        elif n < 65536:
            head += bytes([0x80 | 126]) + struct.pack('>H', n)
        else:
            head += bytes([0x80 | 127]) + struct.pack('>Q', n)
        self.sock.sendall(head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload)))

    def receive(self) -> tuple[int, bytes]:
        """(opcode, payload) of the next whole message (fragments joined; pings answered)."""
        parts, first_opcode = [], None
        while True:
            b0, b1 = self._read(2)
            opcode, n = b0 & 0x0F, b1 & 0x7F
            if n == 126:
                n = struct.unpack('>H', self._read(2))[0]
            elif n == 127:
                n = struct.unpack('>Q', self._read(8))[0]
            mask = self._read(4) if b1 & 0x80 else None
            payload = self._read(n)
            if mask:
                payload = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
            if opcode == 0x9:
                self._send(0xA, payload)
                continue
            if opcode == 0x8:
                raise ConnectionError('the server closed the connection')
            if opcode != 0x0:
                first_opcode = opcode
            parts.append(payload)
            if b0 & 0x80:
                return first_opcode, b''.join(parts)

    def send_json(self, message: dict) -> None:
        self._send(0x1, json.dumps(message).encode())

    def read_until(self, predicate, timeout: float):
        """Read messages (recording serverInfo and advertised channels) until predicate(opcode, payload)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            opcode, payload = self.receive()
            if opcode == 0x1:
                message = json.loads(payload)
                if message.get('op') == 'serverInfo':
                    self.server_info = message
                elif message.get('op') == 'advertise':
                    self.channels.update({c['id']: c for c in message['channels']})
            if predicate(opcode, payload):
                return opcode, payload
        raise TimeoutError(f'nothing matched within {timeout} s')

    def close(self) -> None:
        try:
            self._send(0x8, b'')
        except OSError:
            pass
        self.sock.close()


def message_data(payload: bytes) -> tuple[int, int, bytes]:
    """(subscription id, log time ns, message bytes) of a Message Data frame."""
    if payload[0] != 0x01:
        raise ValueError(f'not Message Data: opcode {payload[0]}')
    sub_id, log_time = struct.unpack_from('<IQ', payload, 1)
    return sub_id, log_time, payload[13:]
