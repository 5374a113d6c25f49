from django.apps import AppConfig


class ScrapingConfig(AppConfig):
    name = "scraping"
    verbose_name = "Scraping"
    default_auto_field = "django.db.models.BigAutoField"
