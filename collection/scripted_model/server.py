"""The loopback HTTP server that speaks enough of the Anthropic Messages API for the CLI."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit

from .policies import POLICIES
from .request import ModelRequest, SessionConfig
from .side_requests import side_reply
from .sse import message_payload, stream_events
from .turns import RequestAborted, ScriptedModelError, Turn, stable_id
from .usage import estimate_tokens, output_tokens, request_usage

logger = logging.getLogger(__name__)


def reply_for(request: ModelRequest) -> Turn:
    """The turn for this request: a side request's short answer, or the session policy's."""
    if (side := side_reply(request)) is not None:
        return side
    policy = POLICIES.get(request.config.policy)
    if policy is None:
        raise ScriptedModelError(
            400, "invalid_request_error", f"unknown scripted policy {request.config.policy!r}"
        )
    return policy(request.config).next_turn(request)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _HTTPServer

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("%s " + format, self.client_address[0], *args)

    def do_HEAD(self) -> None:
        # The CLI probes reachability (HEAD /api/hello) when non-essential traffic is allowed.
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_GET(self) -> None:
        path = urlsplit(self.path).path
        if path == "/v1/models":
            self._json(200, {"data": [], "has_more": False, "first_id": None, "last_id": None})
        else:
            logger.debug("scripted model: unknown GET %s", self.path)
            self._error(404, "not_found_error", f"no {path}")

    def do_POST(self) -> None:
        path = urlsplit(self.path).path
        try:
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)))
        except ValueError:
            self._error(400, "invalid_request_error", "the body is not JSON")
            return
        if path == "/v1/messages":
            self._messages(body)
        elif path == "/v1/messages/count_tokens":
            counted = [body.get("system") or "", body.get("tools") or [], body.get("messages")]
            self._json(200, {"input_tokens": estimate_tokens(counted)})
        else:
            logger.debug("scripted model: unknown POST %s", self.path)
            self._error(404, "not_found_error", f"no {path}")

    def _messages(self, body: dict[str, Any]) -> None:
        try:
            request = ModelRequest(
                body,
                SessionConfig.from_headers(self.headers),
                session_id=self.headers.get("X-Claude-Code-Session-Id", ""),
                stop_event=self.server.stopping,
            )
            turn = reply_for(request)
        except ScriptedModelError as error:
            self._error(error.status, error.error_type, error.message)
            return
        except RequestAborted:
            self.close_connection = True
            return
        except Exception as error:  # a bad script or header fails the request, not the server
            logger.exception("scripted model could not answer")
            self._error(400, "invalid_request_error", f"scripted model: {error!r}")
            return
        logger.debug(
            "scripted model: policy=%s turn=%d stop=%s blocks=%s",
            request.config.policy,
            request.turn,
            turn.stop_reason,
            [b["type"] for b in turn.blocks],
        )
        usage = {**request_usage(body, request.turn), "output_tokens": output_tokens(turn.blocks)}
        reply = (request.block_id("msg"), request.model, turn.blocks, turn.stop_reason, usage)
        if body.get("stream"):
            self._stream(stream_events(*reply))
        else:
            self._json(200, message_payload(*reply))

    def _stream(self, events: Iterator[bytes]) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        # No Content-Length on a stream: closing the connection marks its end.
        self.send_header("Connection", "close")
        self.end_headers()
        self.close_connection = True
        try:
            for chunk in events:
                self.wfile.write(chunk)
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            logger.debug("scripted model: client left mid-stream")

    def _error(self, status: int, error_type: str, message: str) -> None:
        self._json(status, ScriptedModelError(status, error_type, message).payload())

    def _json(self, status: int, payload: dict[str, Any]) -> None:
        text = json.dumps(payload)
        data = text.encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("request-id", stable_id("req", text))
        self.end_headers()
        self.wfile.write(data)


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    stopping: threading.Event


class ScriptedModelServer:
    """The scripted model on a loopback port; a context manager that starts and stops it."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self._httpd = _HTTPServer((host, port), _Handler)
        self._httpd.stopping = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        host, port = self._httpd.socket.getsockname()[:2]
        return f"http://{host}:{port}"

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> ScriptedModelServer:
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.1},
            name="scripted-model",
            daemon=True,
        )
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        self._httpd.serve_forever(poll_interval=0.1)

    def stop(self) -> None:
        """Stop serving; policies that are waiting (``slow``) give up at once."""
        self._httpd.stopping.set()
        if self.running:
            self._httpd.shutdown()
        self._httpd.server_close()

    def __enter__(self) -> ScriptedModelServer:
        return self if self.running else self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
