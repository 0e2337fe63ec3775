"""Serve an exported site (fastdiff/web/site.py) from Python's standard library, with the two headers
that make the page cross-origin isolated, so that onnxruntime-web may run WASM on several threads:

    python -m fastdiff.web.serve site/ [--port 8000] [--host 127.0.0.1]

Any static host serves the folder; without these headers the page runs on one thread.
"""

from __future__ import annotations

import argparse
import functools
import http.server
import mimetypes
import threading
from pathlib import Path

ISOLATION_HEADERS = {"Cross-Origin-Opener-Policy": "same-origin", "Cross-Origin-Embedder-Policy": "require-corp"}
# A module script and a streamed WASM compile need these types; older Pythons guess neither.
mimetypes.add_type("text/javascript", ".mjs")
mimetypes.add_type("application/wasm", ".wasm")


class IsolatedHandler(http.server.SimpleHTTPRequestHandler):
    def end_headers(self):
        for name, value in ISOLATION_HEADERS.items():
            self.send_header(name, value)
        super().end_headers()

    def log_message(self, format, *args):  # a classroom's requests would flood the terminal
        pass


def site_server(folder: Path, host: str = "127.0.0.1", port: int = 0) -> http.server.ThreadingHTTPServer:
    """A server of folder (port 0: any free port, see server.server_address); call serve_forever."""
    if not (Path(folder) / "site.json").is_file():
        raise SystemExit(f"{folder}: no site.json; export the site with `fastdiff export web --out {folder}`")
    handler = functools.partial(IsolatedHandler, directory=str(folder))
    return http.server.ThreadingHTTPServer((host, port), handler)


def serve_in_background(folder: Path) -> tuple[http.server.ThreadingHTTPServer, str]:
    """Start site_server on a free local port in a daemon thread: (server, the page's URL)."""
    server = site_server(folder)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}/"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", type=Path, help="the exported site")
    parser.add_argument("--host", default="127.0.0.1", help="0.0.0.0 to serve a classroom (default %(default)s)")
    parser.add_argument("--port", type=int, default=8000, help="(default %(default)s)")
    args = parser.parse_args()
    server = site_server(args.folder, args.host, args.port)
    print(f"serving {args.folder} at http://{args.host}:{server.server_address[1]}/ (Ctrl+C stops)")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
