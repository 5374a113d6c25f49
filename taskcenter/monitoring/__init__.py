"""Operations endpoints: Prometheus metrics (``/metrics``) and health probes (``/healthz``,
``/readyz``). It reads the engine and the models and is imported by nothing but the URLs and
the middleware list."""
