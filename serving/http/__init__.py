"""The REST transport: FastAPI routers over :class:`serving.service.QAService`."""

from serving.http.app import create_app

__all__ = ["create_app"]
