"""The ``loopitis`` command: migrate, gateway, consumer, dev, jobs, report."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from loopitis import __version__
from loopitis.client.commands import add_commands
from loopitis.errors import ConfigError
from loopitis.settings import Settings, load_settings


def main(argv: list[str] | None = None) -> None:
    args = _parser().parse_args(argv)
    try:
        code = args.handler(args)
    except ConfigError as exc:
        print(f"loopitis {args.command}: {exc}", file=sys.stderr)
        code = 2
    except KeyboardInterrupt:
        code = 130
    sys.exit(code)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="loopitis", description="Recurring HTTP callbacks with an honest record."
    )
    parser.add_argument("--version", action="version", version=__version__)
    commands = parser.add_subparsers(dest="command", required=True)

    migrate = commands.add_parser("migrate", help="upgrade the database schema")
    migrate.set_defaults(handler=_migrate)

    gateway = commands.add_parser("gateway", help="run the HTTP gateway")
    gateway.add_argument("--host", default="0.0.0.0")
    gateway.add_argument("--port", type=int, default=8080)
    gateway.set_defaults(handler=_gateway)

    consumer = commands.add_parser("consumer", help="run one consumer")
    consumer.set_defaults(handler=_consumer)

    dev = commands.add_parser("dev", help="run everything locally on embedded servers")
    dev.add_argument("--port", type=int, default=8080)
    dev.add_argument("--consumers", type=int, default=2)
    dev.add_argument("--data-dir", type=Path, default=Path(".loopitis"))
    dev.set_defaults(handler=_dev)

    add_commands(commands)
    return parser


def _settings(process: str) -> Settings:
    from loopitis.logs import configure_logging

    settings = load_settings()
    configure_logging(settings, process)
    return settings


def _migrate(_: argparse.Namespace) -> int:
    from loopitis.storage.migrate import upgrade_to_head

    upgrade_to_head(_settings("migrate"))
    return 0


def _gateway(args: argparse.Namespace) -> int:
    import uvicorn

    from loopitis.gateway.app import create_app

    settings = _settings("gateway")
    uvicorn.run(
        create_app(settings),
        host=args.host,
        port=args.port,
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=5,
        # Longer than the idle timeout of clients and load balancers (often
        # 60 s): with uvicorn's 5 s, a client reusing a connection at that
        # moment races the server closing it and gets no answer.
        timeout_keep_alive=75,
    )
    return 0


def _consumer(_: argparse.Namespace) -> int:
    from loopitis.consumer.metrics import serve_metrics
    from loopitis.consumer.worker import run_consumer

    settings = _settings("consumer")
    serve_metrics(settings.metrics_port)
    run_consumer(settings)
    return 0


def _dev(args: argparse.Namespace) -> int:
    from loopitis.local.dev import run_dev

    return run_dev(port=args.port, consumers=args.consumers, data_dir=args.data_dir)
