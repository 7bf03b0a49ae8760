from django.apps import AppConfig


class ReviewsConfig(AppConfig):
    name = "reviews"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from . import schema, signals  # noqa: F401 - the OpenAPI annotations; the audit receivers
