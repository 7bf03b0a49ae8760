"""Routes of the supervisor console: pages under /console/, API under /api/v1/."""

from django.urls import path

from . import console

urlpatterns = [
    path("", console.home, name="console-home"),
    path("audit/", console.audit_search, name="console-audit"),
    path("clips/<uuid:clip_id>/", console.clip_history, name="console-clip"),
    path("reviewers/<str:username>/", console.reviewer_timeline, name="console-timeline"),
    path("anomalies/", console.anomalies, name="console-anomalies"),
    path("escalations/", console.escalations, name="console-escalations"),
    path("escalations/<int:escalation_id>/", console.escalation_detail, name="console-escalation"),
    path("escalations/<int:escalation_id>/take/", console.escalation_take, name="console-escalation-take"),
    path("escalations/<int:escalation_id>/close/", console.escalation_close, name="console-escalation-close"),
    path("quality/", console.quality_page, name="console-quality"),
]

api_urlpatterns = [
    path("audit-events/", console.AuditEventListView.as_view(), name="api-audit-events"),
    path("escalations/", console.EscalationListView.as_view(), name="api-escalations"),
    path("escalations/<str:escalation_id>/take/", console.EscalationTakeView.as_view(),
         name="api-escalation-take"),
    path("escalations/<str:escalation_id>/close/", console.EscalationCloseView.as_view(),
         name="api-escalation-close"),
    path("escalations/<str:escalation_id>/audio-token/", console.EscalationAudioTokenView.as_view(),
         name="api-escalation-audio-token"),
    path("escalations/<str:escalation_id>/audio/", console.EscalationAudioView.as_view(),
         name="api-escalation-audio"),
    path("quality/", console.QualityListView.as_view(), name="api-quality"),
]
