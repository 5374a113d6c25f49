"""Where ``ctx.save_results`` writes: the results model an app registers.

Results are rows of a table with ``task``, ``execution``, ``data_type``, ``data``, ``metadata``
and a per-task unique ``item_key``. The core keeps none of its own; the scraping app registers
``ScrapeResult`` when Django starts, and the data sync service writes to the same table.
"""

from __future__ import annotations

from django.core.exceptions import ImproperlyConfigured
from django.db import models

_results_model: type[models.Model] | None = None


def register_results_model(model: type[models.Model]) -> None:
    global _results_model
    _results_model = model


def results_model() -> type[models.Model]:
    if _results_model is None:
        raise ImproperlyConfigured(
            "No installed app stores task results: add 'scraping' to INSTALLED_APPS."
        )
    return _results_model
