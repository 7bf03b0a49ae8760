from django.apps import AppConfig


class ReviewsConfig(AppConfig):
    name = "reviews"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from django.db.models.signals import post_migrate

        from . import api_serializers, permissions, signals  # noqa: F401 - the OpenAPI auth scheme; the audit receivers

        # Permission rows can be recreated (migrate, a test flush): forget the cached ids.
        post_migrate.connect(lambda **kwargs: permissions._clip_permission.cache_clear(), weak=False)
