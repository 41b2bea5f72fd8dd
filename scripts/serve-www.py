#!/usr/bin/env python3
"""Serves the browser lab: www/ at /, and the MNIST files at /data/<name>/ from the first
directory that has them (the same lookup as lab-core: $LTH_DATA, data/<name> and
shared/<name> beside the checkout or an ancestor, Debian's Fashion-MNIST, the cache).

    scripts/serve-www.py [--port 8080] [--root www]
"""
import argparse
import http.server
import os
import pathlib
import sys

FILES = ["train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
         "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"]


def data_dir(name: str, checkout: pathlib.Path):
    candidates = []
    if os.environ.get("LTH_DATA") and name == "mnist":
        candidates.append(pathlib.Path(os.environ["LTH_DATA"]))
    for ancestor in [checkout, *checkout.parents][:4]:
        candidates += [ancestor / "data" / name, ancestor / "shared" / name]
    if name == "fashion-mnist":
        candidates.append(pathlib.Path("/usr/share/datasets/fashion-mnist"))
    cache = os.environ.get("LTH_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")), "lth-lab")
    candidates.append(pathlib.Path(cache) / name)
    return next((d for d in candidates if all((d / f).is_file() for f in FILES)), None)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--bind", default="127.0.0.1")
    parser.add_argument("--root", default=None, help="static root (default: www/ of this checkout)")
    args = parser.parse_args()
    checkout = pathlib.Path(__file__).resolve().parent.parent
    root = pathlib.Path(args.root) if args.root else checkout / "www"
    if not (root / "pkg" / "lab_wasm.js").is_file():
        sys.exit(f"{root}/pkg is missing: build it with scripts/build-www.sh")
    datasets = {name: data_dir(name, checkout) for name in ("mnist", "fashion-mnist")}
    if datasets["mnist"] is None:
        sys.exit("MNIST not found: set LTH_DATA, or run scripts/imp.sh once to download it into the cache")

    class Handler(http.server.SimpleHTTPRequestHandler):
        extensions_map = {**http.server.SimpleHTTPRequestHandler.extensions_map,
                          ".wasm": "application/wasm", ".js": "text/javascript", ".gz": "application/octet-stream"}

        def __init__(self, *a, **k):
            super().__init__(*a, directory=str(root), **k)

        def translate_path(self, path):
            parts = path.split("?", 1)[0].split("/")
            if len(parts) == 4 and parts[1] == "data" and parts[2] in datasets and parts[3] in FILES:
                directory = datasets[parts[2]]
                if directory is not None:
                    return str(directory / parts[3])
            return super().translate_path(path)

        def end_headers(self):
            # No stale wasm after a rebuild.
            self.send_header("Cache-Control", "no-store")
            super().end_headers()

        def log_message(self, *a):
            if os.environ.get("LTH_SERVE_LOG"):
                super().log_message(*a)

    class Server(http.server.ThreadingHTTPServer):
        def handle_error(self, request, client_address):
            # A browser that navigates away mid-download resets the connection: not an error.
            if isinstance(sys.exc_info()[1], (ConnectionResetError, BrokenPipeError)):
                return
            super().handle_error(request, client_address)

    server = Server((args.bind, args.port), Handler)
    print(f"LTH Lab: http://{args.bind}:{server.server_address[1]}/  (MNIST from {datasets['mnist']})", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
