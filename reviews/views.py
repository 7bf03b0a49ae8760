"""Server-rendered pages: thin, the work happens in services and the page's JS via the API."""

from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.db import transaction
from django.shortcuts import redirect, render
from django.utils.decorators import method_decorator

from . import permissions
from .errors import NotFoundDenied


@login_required
def home(request):
    if permissions.user_in_group(request.user, permissions.REVIEWER):
        return redirect("workspace")
    if request.user.is_staff:
        return redirect("admin:index")
    return render(request, "reviews/home.html")


@login_required
def workspace(request):
    if not permissions.user_in_group(request.user, permissions.REVIEWER):
        raise NotFoundDenied(object_type="page", object_id="workspace", attempted="page.workspace",
                             reason="not_reviewer")
    return render(request, "reviews/workspace.html")


# Login and logout run in one transaction with their audit events (see signals.py).
@method_decorator(transaction.atomic, name="dispatch")
class LoginView(auth_views.LoginView):
    redirect_authenticated_user = True


@method_decorator(transaction.atomic, name="dispatch")
class LogoutView(auth_views.LogoutView):
    pass
