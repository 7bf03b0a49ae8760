from django.apps import AppConfig


class ReviewsConfig(AppConfig):
    name = "reviews"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from django.db.models.signals import post_migrate

        from . import permissions, schema, signals  # noqa: F401 - the OpenAPI annotations; the audit receivers

        # Permission rows can be recreated (migrate, a test flush): forget the cached ids.
        post_migrate.connect(lambda **kwargs: permissions._clip_permission.cache_clear(), weak=False)
