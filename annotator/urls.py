"""Project-level routes: the Django admin, the error handlers, and the app's one URL map."""

from django.contrib import admin
from django.urls import include, path
from django.views.i18n import JavaScriptCatalog, set_language

handler400 = "reviews.views.bad_request"
handler404 = "reviews.views.not_found"
handler500 = "reviews.views.server_error"

urlpatterns = [
    path("admin/", admin.site.urls),
    # Issue 12: the language switch (POST with CSRF, kept in a cookie) and the scripts' catalogue.
    path("i18n/setlang/", set_language, name="set_language"),
    path("jsi18n/", JavaScriptCatalog.as_view(packages=["reviews"]), name="javascript-catalog"),
    path("", include("reviews.urls")),
]
