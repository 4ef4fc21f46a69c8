"""A slower network link for a benchmark: an HTTPS proxy on 127.0.0.1 that tunnels `CONNECT`
requests and lets through at most a given number of bytes a second towards the client, shared by
every tunnel (as one network interface would be). Uploads are not limited. It sees only the
encrypted bytes and changes none of them.

    link = Link(mbit=100)           # starts on a free port, in a thread of its own
    env["npm_config_https_proxy"] = link.url
"""
import asyncio
import threading
import time

BURST = 256 * 1024  # bytes a link lets through at once after a pause


class Link:
    def __init__(self, mbit):
        self.rate = mbit * 1e6 / 8  # bytes a second
        self._next = 0.0  # when the link is free again (monotonic seconds)
        self._loop = asyncio.new_event_loop()
        started = threading.Event()
        threading.Thread(target=self._serve, args=(started,), daemon=True).start()
        started.wait()
        self.url = f"http://127.0.0.1:{self.port}"

    def _serve(self, started):
        asyncio.set_event_loop(self._loop)
        server = self._loop.run_until_complete(asyncio.start_server(self._client, "127.0.0.1", 0))
        self.port = server.sockets[0].getsockname()[1]
        started.set()
        self._loop.run_forever()

    async def _client(self, reader, writer):
        try:
            request = await reader.readuntil(b"\r\n\r\n")
            method, target = request.split(b" ", 2)[:2]
            if method != b"CONNECT":
                writer.write(b"HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\n\r\n")
                return
            host, port = target.decode().rsplit(":", 1)
            up_reader, up_writer = await asyncio.open_connection(host, int(port))
            writer.write(b"HTTP/1.1 200 Connection Established\r\n\r\n")
            await asyncio.gather(self._pipe(reader, up_writer, limit=False),
                                 self._pipe(up_reader, writer, limit=True))
        except (OSError, asyncio.IncompleteReadError, ValueError):
            pass
        finally:
            writer.close()

    async def _pipe(self, reader, writer, limit):
        try:
            while data := await reader.read(65536):
                if limit:
                    # Each chunk takes the link for its share of a second, after what is queued;
                    # time lost to a late wake-up is made up for, up to a burst of BURST bytes.
                    now = time.monotonic()
                    self._next = max(self._next, now - BURST / self.rate) + len(data) / self.rate
                    await asyncio.sleep(self._next - now)
                writer.write(data)
                await writer.drain()
        except OSError:
            pass
        finally:
            try:
                writer.write_eof()
            except OSError:
                pass
