from django.apps import AppConfig
from django.db.models.signals import post_migrate
from django.utils.translation import gettext_lazy as _


def _ensure_search_index(sender, using: str = "default", **kwargs) -> None:
    # After every migrate: SQLite drops a table's triggers when a migration rebuilds it.
    from django.db import connections

    from .search_index import ensure_search_index

    ensure_search_index(connections[using])


class ScrapingConfig(AppConfig):
    name = "scraping"
    verbose_name = _("Scraping")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from taskcenter.kinds.results import register_results_model

        from .models import ScrapeResult

        register_results_model(ScrapeResult)
        post_migrate.connect(_ensure_search_index, sender=self, dispatch_uid="scrape-search-index")
