"""Routes of the supervisor console: pages under /console/, API under /api/v1/."""

urlpatterns = []
api_urlpatterns = []
