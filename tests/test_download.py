"""download_xlsa17 against a local HTTP server that honours Range requests."""

from __future__ import annotations

import hashlib
import http.server
import io
import json
import socket
import threading
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from unseen.data.datasets import load_benchmark
from unseen.data.download import download_xlsa17
from unseen.data.synthetic import synthetic_benchmark
from unseen.data.xlsa17 import write_xlsa17
from unseen.errors import UnseenInputError


def _archive(tmp_path: Path) -> bytes:
    """A small zip with the official layout: xlsa17/data/AWA2/{res101,att_splits}.mat."""
    folder = write_xlsa17(synthetic_benchmark(images_per_class=10), tmp_path / "src" / "AWA2")
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as bundle:
        for path in sorted(folder.iterdir()):
            bundle.write(path, f"xlsa17/data/AWA2/{path.name}")
        bundle.writestr("xlsa17/README.txt", "proposed splits")
    return buffer.getvalue()


class _Server:
    """Serves `payload` at /xlsa17.zip; records the Range header of every request."""

    def __init__(self, payload: bytes, honour_range: bool = True, cut_first_at: int = 0):
        self.payload, self.honour_range, self.ranges = payload, honour_range, []
        self.cut_first_at = cut_first_at  # drop the first connection after this many bytes
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                server.ranges.append(self.headers.get("Range"))
                if self.path != "/xlsa17.zip":
                    self.send_error(404)
                    return
                start = 0
                requested = self.headers.get("Range")
                if requested and server.honour_range:
                    start = int(requested.removeprefix("bytes=").split("-")[0])
                    if start >= len(server.payload):
                        self.send_error(416)
                        return
                    self.send_response(206)
                    self.send_header("Content-Range",
                                     f"bytes {start}-{len(server.payload) - 1}/"
                                     f"{len(server.payload)}")
                else:
                    self.send_response(200)
                body = server.payload[start:]
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if server.cut_first_at and len(server.ranges) == 1:
                    self.wfile.write(body[:server.cut_first_at])
                    self.close_connection = True
                    return
                self.wfile.write(body)

            def log_message(self, *args) -> None:
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/xlsa17.zip"
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.02,), daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture(scope="module")
def payload(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    return _archive(tmp_path_factory.mktemp("archive"))


@pytest.fixture
def server(payload: bytes) -> Iterator[_Server]:
    running = _Server(payload)
    yield running
    running.close()


def test_full_download_extracts_and_records_digest(tmp_path, server, payload):
    cache = tmp_path / "cache"
    digest = hashlib.sha256(payload).hexdigest()
    target = download_xlsa17(cache, url=server.url, sha256=digest)
    assert target == cache / "xlsa17"
    assert (target / "data" / "AWA2" / "res101.mat").is_file()  # not nested twice
    assert (target / "README.txt").read_text() == "proposed splits"
    assert json.loads((cache / "xlsa17.zip.json").read_text())["sha256"] == digest
    assert server.ranges == [None]
    assert not (cache / "xlsa17.zip.part").exists()
    benchmark = load_benchmark("AWA2", target)
    assert benchmark.num_images == 120
    # Idempotent: a second call neither downloads nor re-extracts.
    assert download_xlsa17(cache, url=server.url, sha256=digest) == target
    assert server.ranges == [None]


def test_digest_recorded_without_expected_checksum(tmp_path, server, payload):
    download_xlsa17(tmp_path, url=server.url)
    record = json.loads((tmp_path / "xlsa17.zip.json").read_text())
    assert record == {"url": server.url, "sha256": hashlib.sha256(payload).hexdigest(),
                      "bytes": len(payload)}


def test_resume_from_partial_download(tmp_path, server, payload):
    half = len(payload) // 2
    (tmp_path / "xlsa17.zip.part").write_bytes(payload[:half])
    target = download_xlsa17(tmp_path, url=server.url,
                             sha256=hashlib.sha256(payload).hexdigest())
    assert server.ranges == [f"bytes={half}-"]
    assert (target / "data" / "AWA2" / "att_splits.mat").is_file()


def test_dropped_connection_keeps_part_and_resumes(tmp_path, payload):
    flaky = _Server(payload, cut_first_at=1000)
    digest = hashlib.sha256(payload).hexdigest()
    try:
        with pytest.raises(UnseenInputError, match="run again to resume"):
            download_xlsa17(tmp_path, url=flaky.url, sha256=digest)
        assert (tmp_path / "xlsa17.zip.part").stat().st_size == 1000
        target = download_xlsa17(tmp_path, url=flaky.url, sha256=digest)
    finally:
        flaky.close()
    assert flaky.ranges == [None, "bytes=1000-"]
    assert (target / "data" / "AWA2" / "res101.mat").is_file()


def test_complete_part_file_is_not_fetched_again(tmp_path, server, payload):
    (tmp_path / "xlsa17.zip.part").write_bytes(payload)
    target = download_xlsa17(tmp_path, url=server.url, sha256=hashlib.sha256(payload).hexdigest())
    assert server.ranges == [f"bytes={len(payload)}-"]  # answered 416: nothing left to send
    assert (target / "data" / "AWA2" / "res101.mat").is_file()


def test_server_without_range_support_restarts_cleanly(tmp_path, payload):
    plain = _Server(payload, honour_range=False)
    try:
        (tmp_path / "xlsa17.zip.part").write_bytes(payload[:100])
        download_xlsa17(tmp_path, url=plain.url, sha256=hashlib.sha256(payload).hexdigest())
    finally:
        plain.close()
    assert plain.ranges == ["bytes=100-"]
    assert (tmp_path / "xlsa17" / "data" / "AWA2" / "res101.mat").is_file()


def test_checksum_mismatch_leaves_nothing(tmp_path, server):
    with pytest.raises(UnseenInputError) as error:
        download_xlsa17(tmp_path, url=server.url, sha256="0" * 64)
    assert "expected sha256 " + "0" * 64 in str(error.value)
    assert server.url in str(error.value)
    assert sorted(path.name for path in tmp_path.iterdir()) == []


def test_corrupt_archive_is_refused_and_removed(tmp_path):
    bad = _Server(b"this is not a zip file at all")
    try:
        with pytest.raises(UnseenInputError, match="expected a zip archive"):
            download_xlsa17(tmp_path, url=bad.url)
    finally:
        bad.close()
    assert not (tmp_path / "xlsa17.zip").exists() and not (tmp_path / "xlsa17").exists()
    assert not [path for path in tmp_path.iterdir() if "extract" in path.name]


def test_http_error_gives_manual_steps(tmp_path, server):
    with pytest.raises(UnseenInputError) as error:
        download_xlsa17(tmp_path, url=server.url.replace("xlsa17.zip", "missing.zip"))
    assert "HTTP 404" in str(error.value) and "--data-root" in str(error.value)


def test_unreachable_server_fails_fast_with_manual_steps(tmp_path):
    with socket.socket() as probe:  # a port that nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}/xlsa17.zip"
    started = time.monotonic()
    with pytest.raises(UnseenInputError) as error:
        download_xlsa17(tmp_path, url=url, timeout=2.0)
    assert time.monotonic() - started < 5.0
    message = str(error.value)
    assert url in message and "unzip" in message
    assert f"--data-root {tmp_path / 'xlsa17' / 'data'}" in message
    assert not (tmp_path / "xlsa17").exists()
