"""The runner's end of the sandbox's answer pipe: length-prefixed frames (multiprocessing.connection's wire
format, which the child writes), read with a size cap and a deadline per frame, never blocking.

    pipe = AnswerPipe(fd, max_frame_bytes=1 << 18, frame_timeout_s=0.25)
    frame = pipe.read(timeout)     # bytes, or None when no frame began within `timeout`
                                   # FrameError: oversized, malformed or late (the child must be ended)
                                   # EOFError: the child closed the pipe (it exited)
"""
from __future__ import annotations

import os
import select
import struct
import time


class FrameError(Exception):
    """The child broke the protocol; the message is the reason the attempt ends with."""


class AnswerPipe:
    def __init__(self, fd: int, max_frame_bytes: int = 1 << 18, frame_timeout_s: float = 0.25):
        self.fd = fd
        self.max_frame_bytes = max_frame_bytes
        self.frame_timeout_s = frame_timeout_s
        self._buf = bytearray()
        self._frame_started: float | None = None    # when the first byte of the pending frame arrived
        os.set_blocking(fd, False)
        self._poll = select.poll()
        self._poll.register(fd, select.POLLIN | select.POLLHUP | select.POLLERR)

    def read(self, timeout: float) -> bytes | None:
        deadline = time.monotonic() + max(0.0, timeout)
        while True:
            frame = self._complete_frame()
            if frame is not None:
                return frame
            now = time.monotonic()
            if self._frame_started is not None:
                # A frame has begun: it must end within its own deadline, whatever the call's timeout.
                frame_deadline = self._frame_started + self.frame_timeout_s
                if now >= frame_deadline:
                    raise FrameError(f'late frame: {len(self._buf)} bytes of an answer, then nothing for '
                                     f'{self.frame_timeout_s:.2f} s')
                wait_until = frame_deadline
            else:
                if now >= deadline:
                    return None
                wait_until = deadline
            self._fill(wait_until - now)

    def _fill(self, wait_s: float) -> None:
        if not self._poll.poll(max(0, int(wait_s * 1000) + 1)):
            return
        try:
            chunk = os.read(self.fd, 65536)
        except BlockingIOError:
            return
        if not chunk:
            raise EOFError('the sandbox closed its answer pipe')
        if not self._buf:
            self._frame_started = time.monotonic()
        self._buf += chunk

    def _complete_frame(self) -> bytes | None:
        if len(self._buf) < 4:
            return None
        (size,) = struct.unpack('!i', self._buf[:4])
        header = 4
        if size == -1:                      # the wire format's 64-bit length: never a size we accept
            if len(self._buf) < 12:
                return None
            (size,) = struct.unpack('!Q', self._buf[4:12])
            header = 12
        if size < 0:
            raise FrameError(f'malformed frame: length header {size}')
        if size > self.max_frame_bytes:
            raise FrameError(f'oversized frame: {size} bytes announced (at most {self.max_frame_bytes})')
        if len(self._buf) < header + size:
            return None
        frame = bytes(self._buf[header:header + size])
        del self._buf[:header + size]
        self._frame_started = time.monotonic() if self._buf else None
        return frame

    def close(self) -> None:
        try:
            os.close(self.fd)
        except OSError:
            pass


class RequestPipe:
    """The runner's end of the request pipe: one frame per request, written without blocking. A child that
    stops reading (a policy can patch the loop it runs in) cannot wedge the runner: past `timeout` the
    write fails with FrameError."""

    def __init__(self, fd: int):
        self.fd = fd
        os.set_blocking(fd, False)
        self._poll = select.poll()
        self._poll.register(fd, select.POLLOUT | select.POLLERR | select.POLLHUP)

    def send(self, payload: bytes, timeout: float) -> None:
        data = memoryview(struct.pack('!i', len(payload)) + payload)
        deadline = time.monotonic() + timeout
        while data:
            try:
                written = os.write(self.fd, data)
                data = data[written:]
                continue
            except BlockingIOError:
                pass
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise FrameError(f'the sandbox stopped reading its requests ({len(data)} bytes unread after '
                                 f'{timeout:.1f} s)')
            self._poll.poll(int(remaining * 1000) + 1)

    def close(self) -> None:
        try:
            os.close(self.fd)
        except OSError:
            pass
