from django.contrib import admin
from django.urls import include, path
from django.views.i18n import JavaScriptCatalog, set_language
from drf_spectacular.views import SpectacularAPIView

from reviews import api, api_review, console_urls, views

api_v1 = [
    path("api/v1/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/v1/auth/login/", api.LoginView.as_view(), name="api-login"),
    path("api/v1/auth/logout/", api.LogoutView.as_view(), name="api-logout"),
    path("api/v1/clips/", api.ClipIngestView.as_view(), name="api-clip-ingest"),
    path("api/v1/assignments/next/", api.AssignmentNextView.as_view(), name="api-assignment-next"),
    path("api/v1/assignments/<str:assignment_id>/", api.AssignmentDetailView.as_view(), name="api-assignment"),
    path("api/v1/assignments/<str:assignment_id>/audio-token/", api.AudioTokenView.as_view(),
         name="api-audio-token"),
    path("api/v1/assignments/<str:assignment_id>/audio/", api.AudioView.as_view(), name="api-audio"),
    path("api/v1/assignments/<str:assignment_id>/draft/", api.DraftView.as_view(), name="api-draft"),
    path("api/v1/assignments/<str:assignment_id>/submit/", api.SubmitView.as_view(), name="api-submit"),
    path("api/v1/assignments/<str:assignment_id>/skip/", api.SkipView.as_view(), name="api-skip"),
    path("api/v1/assignments/<str:assignment_id>/flag/", api.FlagView.as_view(), name="api-flag"),
    path("api/v1/me/progress/", api.ProgressView.as_view(), name="api-progress"),
    path("api/v1/subjects/opt-out/", api.SubjectOptOutView.as_view(), name="api-subject-opt-out"),
    path("api/v1/subjects/opt-in/", api.SubjectOptInView.as_view(), name="api-subject-opt-in"),
    path("api/v1/subjects/erase/", api.SubjectEraseView.as_view(), name="api-subject-erase"),
    path("api/v1/subjects/access-report/", api.SubjectAccessReportView.as_view(), name="api-subject-access-report"),
    # Checkers (issue 11): their queue, audio and decisions; a reviewer's feedback.
    path("api/v1/reviews/next/", api_review.ReviewNextView.as_view(), name="api-review-next"),
    path("api/v1/reviews/<str:review_id>/", api_review.ReviewDetailView.as_view(), name="api-review"),
    path("api/v1/reviews/<str:review_id>/audio-token/", api_review.ReviewAudioTokenView.as_view(),
         name="api-review-audio-token"),
    path("api/v1/reviews/<str:review_id>/audio/", api_review.ReviewAudioView.as_view(), name="api-review-audio"),
    path("api/v1/reviews/<str:review_id>/accept/", api_review.ReviewAcceptView.as_view(), name="api-review-accept"),
    path("api/v1/reviews/<str:review_id>/reject/", api_review.ReviewRejectView.as_view(), name="api-review-reject"),
    path("api/v1/reviews/<str:review_id>/adjudicate/", api_review.ReviewAdjudicateView.as_view(),
         name="api-review-adjudicate"),
    path("api/v1/me/feedback/", api_review.FeedbackView.as_view(), name="api-feedback"),
]

handler400 = "reviews.views.bad_request"
handler404 = "reviews.views.not_found"
handler500 = "reviews.views.server_error"

urlpatterns = [
    path("", views.home, name="home"),
    path("healthz", views.healthz, name="healthz"),
    path("favicon.ico", views.favicon),
    path("workspace/", views.workspace, name="workspace"),
    path("accounts/login/", views.LoginView.as_view(), name="login"),
    path("accounts/logout/", views.LogoutView.as_view(), name="logout"),
    path("accounts/mfa/", views.mfa_verify, name="mfa"),
    path("admin/", admin.site.urls),
    # Issue 12: the language switch (POST with CSRF, kept in a cookie) and the scripts' catalogue.
    path("i18n/setlang/", set_language, name="set_language"),
    path("jsi18n/", JavaScriptCatalog.as_view(packages=["reviews"]), name="javascript-catalog"),
    path("console/", include(console_urls.urlpatterns)),
    path("api/v1/", include(console_urls.api_urlpatterns)),
    *api_v1,
    path("review/", api_review.review_page, name="review"),
    path("workspace/feedback/", api_review.feedback_page, name="feedback"),
]
