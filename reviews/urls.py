"""Every route of the app, in one map: pages, the reviewer API, the checkers' API, the
console pages and the console API. Python builds URLs with ``reverse()`` on these names,
templates with ``{% url %}``, and the pages' scripts take them from the page or the payload."""

from django.urls import path
from drf_spectacular.views import SpectacularAPIView

from . import api, api_review, console, views

pages = [
    path("", views.home, name="home"),
    path("healthz", views.healthz, name="healthz"),
    path("favicon.ico", views.favicon),
    path("workspace/", views.workspace, name="workspace"),
    path("workspace/feedback/", api_review.feedback_page, name="feedback"),
    path("review/", api_review.review_page, name="review"),
    path("accounts/login/", views.LoginView.as_view(), name="login"),
    path("accounts/logout/", views.LogoutView.as_view(), name="logout"),
    path("accounts/mfa/", views.mfa_verify, name="mfa"),
]

reviewer_api = [
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
]

# Checkers (issue 11): their queue, audio and decisions; a reviewer's feedback.
checker_api = [
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

console_pages = [
    path("console/", console.home, name="console-home"),
    path("console/audit/", console.audit_search, name="console-audit"),
    path("console/clips/<uuid:clip_id>/", console.clip_history, name="console-clip"),
    path("console/reviewers/<str:username>/", console.reviewer_timeline, name="console-timeline"),
    path("console/anomalies/", console.anomalies, name="console-anomalies"),
    path("console/escalations/", console.escalations, name="console-escalations"),
    path("console/escalations/<int:escalation_id>/", console.escalation_detail, name="console-escalation"),
    path("console/escalations/<int:escalation_id>/take/", console.escalation_take, name="console-escalation-take"),
    path("console/escalations/<int:escalation_id>/close/", console.escalation_close,
         name="console-escalation-close"),
    path("console/quality/", console.quality_page, name="console-quality"),
]

console_api = [
    path("api/v1/audit-events/", console.AuditEventListView.as_view(), name="api-audit-events"),
    path("api/v1/escalations/", console.EscalationListView.as_view(), name="api-escalations"),
    path("api/v1/escalations/<str:escalation_id>/take/", console.EscalationTakeView.as_view(),
         name="api-escalation-take"),
    path("api/v1/escalations/<str:escalation_id>/close/", console.EscalationCloseView.as_view(),
         name="api-escalation-close"),
    path("api/v1/escalations/<str:escalation_id>/audio-token/", console.EscalationAudioTokenView.as_view(),
         name="api-escalation-audio-token"),
    path("api/v1/escalations/<str:escalation_id>/audio/", console.EscalationAudioView.as_view(),
         name="api-escalation-audio"),
    path("api/v1/quality/", console.QualityListView.as_view(), name="api-quality"),
]

urlpatterns = [*pages, *console_pages, *console_api, *reviewer_api, *checker_api]
