"""``GET /metrics``: Prometheus exposition of the metrics both transports record."""

from __future__ import annotations

from fastapi import APIRouter, Response

from serving.http.deps import MetricsDep

router = APIRouter(tags=["metrics"])


@router.get("/metrics", summary="Prometheus metrics", response_class=Response)
async def metrics(metrics: MetricsDep) -> Response:  # async: answered even when the pool is busy
    body, content_type = metrics.render()
    return Response(content=body, media_type=content_type)
