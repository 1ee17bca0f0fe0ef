# An HTTP/2 server on hyper-h2 (Debian's python3-h2), not nghttp2: the independent peer for the
# runtime's manual inbound flow control. GET /big answers with BYTES bytes, sending whenever
# the client's windows allow; every WINDOW_UPDATE and every stall (data left, window zero) is
# reported as a JSON line on stdout, so the test can see exactly what the client gave back.
#
#   python3 h2-flow-server.py CERT KEY BYTES      prints {"port": N} once listening
import hashlib
import json
import socket
import ssl
import sys

import h2.config
import h2.connection
import h2.events


def say(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def main():
    cert, key, total = sys.argv[1], sys.argv[2], int(sys.argv[3])
    body = hashlib.sha256(b"seed").digest() * (total // 32 + 1)
    body = body[:total]
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(cert, key)
    ctx.set_alpn_protocols(["h2"])
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    say({"port": srv.getsockname()[1], "sha256": hashlib.sha256(body).hexdigest()})
    raw, _ = srv.accept()
    sock = ctx.wrap_socket(raw, server_side=True)
    conn = h2.connection.H2Connection(config=h2.config.H2Configuration(client_side=False))
    conn.initiate_connection()
    sock.sendall(conn.data_to_send())
    streams = {}  # stream id -> bytes sent
    stalled = set()

    def pump():
        for sid, sent in list(streams.items()):
            while sent < total:
                window = min(conn.local_flow_control_window(sid), conn.max_outbound_frame_size)
                if window <= 0:
                    if sid not in stalled:
                        stalled.add(sid)
                        say({"stalled": sid, "sent": sent})
                    break
                stalled.discard(sid)
                n = min(window, total - sent)
                conn.send_data(sid, body[sent:sent + n], end_stream=(sent + n == total))
                sent += n
            streams[sid] = sent
            if sent == total:
                del streams[sid]
                say({"done": sid, "sent": sent})
        sock.sendall(conn.data_to_send())

    while True:
        data = sock.recv(65536)
        if not data:
            break
        for ev in conn.receive_data(data):
            if isinstance(ev, h2.events.RequestReceived):
                conn.send_headers(ev.stream_id, [(":status", "200"), ("content-length", str(total))])
                streams[ev.stream_id] = 0
            elif isinstance(ev, h2.events.WindowUpdated):
                say({"windowUpdate": ev.stream_id, "delta": ev.delta})
            elif isinstance(ev, h2.events.ConnectionTerminated):
                return
        pump()


if __name__ == "__main__":
    main()
