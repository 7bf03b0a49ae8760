"""Project-level routes: the Django admin, the error handlers, and the app's one URL map."""

from django.contrib import admin
from django.urls import include, path

handler400 = "reviews.views.bad_request"
handler404 = "reviews.views.not_found"
handler500 = "reviews.views.server_error"

urlpatterns = [
    path("admin/", admin.site.urls),
    path("", include("reviews.urls")),
]
