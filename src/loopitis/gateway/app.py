"""The gateway application factory: it only assembles."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from loopitis import __version__
from loopitis.dependency import DependencyState
from loopitis.gateway.limits import HeaderCountLimit
from loopitis.gateway.observe import RequestObserver
from loopitis.gateway.openapi import install_error_documentation
from loopitis.gateway.problems import install_handlers
from loopitis.gateway.routes import (
    dashboard,
    executions,
    health,
    jobs,
    metrics,
    reports,
)
from loopitis.messaging.publisher import JobEventPublisher
from loopitis.settings import Settings
from loopitis.storage.pool import create_pool


def create_app(settings: Settings) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.settings = settings
        app.state.postgres_state = DependencyState("postgres")
        app.state.pool = await create_pool(settings.asyncpg_dsn, settings.db_pool_size)
        app.state.publisher = JobEventPublisher(
            settings.bootstrap_servers, settings.kafka_topic
        )
        await app.state.publisher.start()
        try:
            yield
        finally:
            await app.state.publisher.stop()
            await app.state.pool.close()

    app = FastAPI(
        title="Loopitis",
        version=__version__,
        description="Recurring HTTP callbacks with a record of every execution.",
        lifespan=lifespan,
        # A redirect would be built from the client's Host header; the one
        # trailing-slash form the contract names has its own route.
        redirect_slashes=False,
    )
    install_handlers(app)
    app.add_middleware(HeaderCountLimit, max_headers=settings.request_max_headers)
    install_error_documentation(app)
    app.include_router(jobs.router)
    app.include_router(executions.router)
    app.include_router(health.router)
    app.include_router(reports.router)
    app.include_router(metrics.router)
    app.include_router(dashboard.router)
    app.mount("/ui/static", StaticFiles(packages=[("loopitis.gateway", "static")]))
    app.add_middleware(RequestObserver)
    return app
