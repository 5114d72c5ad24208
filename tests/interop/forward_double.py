"""A Forward protocol v1 server test double (no Fluentd runs here): it follows the spec strictly, decoding
every frame with the `msgpack` library (an implementation independent of Sextant's), and is used by the
`fluentforward` exporter's tests and by the proxy's Fluentd access-log tests."""

from __future__ import annotations

import gzip
import hashlib
import os
import socket
import struct
import threading

import msgpack


class StrictForwardServer:
    """A Forward server test double: validates PackedForward frames, optional handshake, acks.

    `withhold_acks` is the number of chunks (counted from the first) left unanswered: the connection is
    held open silently, as a stuck Fluentd would, until the client gives up and reconnects.
    """

    def __init__(self, shared_key: str | None = None, withhold_acks: int = 0, port: int = 0):
        self.shared_key = shared_key
        self.withhold_acks = withhold_acks
        self.listener = socket.create_server(("127.0.0.1", port))
        self.listener.settimeout(0.2)
        self.port = self.listener.getsockname()[1]
        self.chunks: list[dict] = []  # every chunk received, in order (resends included)
        self.errors: list[str] = []
        self.connections = 0
        self.lock = threading.Lock()
        self.stopping = False
        self.thread = threading.Thread(target=self.accept_loop, daemon=True)
        self.thread.start()

    def accept_loop(self):
        while not self.stopping:
            try:
                conn, _ = self.listener.accept()
            except (socket.timeout, OSError):
                continue
            self.connections += 1
            threading.Thread(target=self.serve, args=(conn,), daemon=True).start()

    def serve(self, conn: socket.socket):
        # Clients keep their connection open between frames, idle for as long as they like; it ends when either
        # side closes it or the double stops.
        conn.settimeout(0.2)
        unpacker = msgpack.Unpacker(raw=False, ext_hook=self.ext)
        try:
            def next_obj():
                while True:
                    for obj in unpacker:
                        return obj
                    try:
                        data = conn.recv(1 << 20)
                    except socket.timeout:
                        if self.stopping:
                            return None
                        continue
                    if not data:
                        return None
                    unpacker.feed(data)

            if self.shared_key is not None:
                nonce = os.urandom(16)
                conn.sendall(msgpack.packb(["HELO", {"nonce": nonce, "auth": b"", "keepalive": True}], use_bin_type=True))
                ping = next_obj()
                assert ping[0] == "PING" and len(ping) == 6, ping
                _, host, salt, digest, user, password = ping
                expected = hashlib.sha512(salt + host.encode() + nonce + self.shared_key.encode()).hexdigest()
                ok = digest == expected
                reply = hashlib.sha512(salt + b"py-fluentd" + nonce + self.shared_key.encode()).hexdigest() if ok else ""
                conn.sendall(msgpack.packb(["PONG", ok, "" if ok else "shared_key mismatch", "py-fluentd", reply], use_bin_type=True))
                if not ok:
                    self.errors.append("bad digest")
                    return
            while (frame := next_obj()) is not None:
                self.check(frame, conn)
        except Exception as e:  # noqa: BLE001 - recorded and asserted by the test
            self.errors.append(repr(e))
        finally:
            conn.close()

    @staticmethod
    def ext(code, data):
        assert code == 0 and len(data) == 8, f"EventTime must be ext 0 of 8 bytes, got {code}/{len(data)}"
        return struct.unpack(">II", data)

    def check(self, frame, conn):
        assert isinstance(frame, list) and len(frame) == 3, f"PackedForward is [tag, entries, option]: {frame!r:.200}"
        tag, entries, option = frame
        assert isinstance(tag, str) and isinstance(entries, bytes), "tag str, entries msgpack bin"
        if option.get("compressed") == "gzip":
            entries = gzip.decompress(entries)
        unpacker = msgpack.Unpacker(raw=False, ext_hook=self.ext)
        unpacker.feed(entries)
        events = list(unpacker)
        assert option["size"] == len(events), option
        for t, record in events:
            assert isinstance(t, tuple) and isinstance(record, dict)
        with self.lock:
            index = len(self.chunks)
            self.chunks.append({"tag": tag, "events": events, "option": option})
        if "chunk" in option and index >= self.withhold_acks:
            conn.sendall(msgpack.packb({"ack": option["chunk"]}, use_bin_type=True))

    def stop(self):
        self.stopping = True
        self.listener.close()
        self.thread.join(timeout=5)
