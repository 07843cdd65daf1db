"""Human API login: `POST /api/v1/session` with email + password answers a session
cookie and the CSRF token to send back in `X-CSRFToken`; `DELETE` logs out.

Django's own `authenticate` and `login` (the session key and the CSRF token are
rotated). Failures count against the same budgets as the admin login
(`tenants.login_guard`: per account and per client address from
`common.net.client_ip`), so alternating the two doors buys no extra guesses. Only JSON
is parsed, so a cross-site HTML form cannot log a victim into another account.
"""

from django.contrib.auth import authenticate, get_user_model, login, logout
from django.middleware.csrf import get_token
from django.views.decorators.debug import sensitive_variables
from drf_spectacular.utils import extend_schema
from rest_framework import exceptions, serializers, status
from rest_framework.authentication import SessionAuthentication
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from common.api.permissions import IsAuthenticatedPrincipal
from common.api.serializers import StrictSerializer
from common.api.views import USER
from common.errors import WardenError
from common.net import client_ip
from tenants.login_guard import login_blocked, login_failed
from tenants.models import Role
from tenants.selectors import memberships_of_user


class SessionLoginSerializer(StrictSerializer):
    email = serializers.EmailField(max_length=254)
    password = serializers.CharField(
        max_length=1024, trim_whitespace=False, style={"input_type": "password"}
    )


class SessionWorkspaceSerializer(serializers.Serializer):
    slug = serializers.CharField(help_text="Send it in X-Warden-Workspace.")
    name = serializers.CharField()
    role = serializers.ChoiceField(choices=Role.choices)


class SessionSerializer(serializers.Serializer):
    email = serializers.EmailField()
    csrf_token = serializers.CharField(
        help_text="Send it in the X-CSRFToken header on POST/PATCH/DELETE with this session."
    )
    workspaces = SessionWorkspaceSerializer(many=True)


class SessionView(APIView):
    authentication_classes = [SessionAuthentication]  # DELETE: the session, with CSRF
    throttle_classes = []  # logins have their own budget; logout costs nothing
    principals = (USER,)
    schema_error_statuses = {
        "POST": (400, 401, 413, 415, 429),
        "DELETE": (401, 403, 429),
    }

    def get_permissions(self):
        if self.request.method == "POST":
            return [AllowAny()]
        return [IsAuthenticatedPrincipal()]

    def perform_authentication(self, request):
        # Logging in needs no prior session; reading one here would demand its CSRF token.
        if request.method != "POST":
            super().perform_authentication(request)

    @extend_schema(
        operation_id="session_create",
        auth=[],
        request=SessionLoginSerializer,
        responses=SessionSerializer,
        description="Log a human in. Answers the session cookie (Set-Cookie) and the "
        "CSRF token. Failed logins are limited per account and per client address, "
        "shared with the admin login (429 rate_limited with Retry-After).",
    )
    @sensitive_variables("password")
    def post(self, request):
        data = SessionLoginSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        email = get_user_model().objects.normalize_email(data.validated_data["email"]).lower()
        password = data.validated_data["password"]
        ip = client_ip(request)
        wait = login_blocked(username=email, ip=ip)
        if wait is not None:  # refused without checking the password
            raise exceptions.Throttled(wait=wait)
        found = get_user_model().objects.filter(email__iexact=email).first()
        username = found.get_username() if found is not None else email
        user = authenticate(request._request, username=username, password=password)
        if user is None:
            login_failed(username=email, ip=ip, request_id=getattr(request, "request_id", ""))
            raise WardenError("invalid_credentials", "Wrong email or password.")
        login(request._request, user)
        body = {
            "email": user.email,
            "csrf_token": get_token(request._request),
            "workspaces": [
                {"slug": m.workspace.slug, "name": m.workspace.name, "role": m.role}
                for m in memberships_of_user(user=user)
            ],
        }
        return Response(SessionSerializer(body).data)

    @extend_schema(operation_id="session_delete", request=None, responses={204: None})
    def delete(self, request):
        logout(request._request)
        return Response(status=status.HTTP_204_NO_CONTENT)
