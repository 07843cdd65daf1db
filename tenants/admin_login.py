"""The admin login form with guessing resistance (tenants.login_guard).

A throttled account or address is refused before the password is checked, with one
message whatever the account; every refused password counts as a failure."""

from __future__ import annotations

from django import forms
from django.contrib.admin.forms import AdminAuthenticationForm

from common.net import client_ip
from tenants.login_guard import LOCKOUT_MESSAGE, login_blocked, login_failed


class ThrottledAdminAuthenticationForm(AdminAuthenticationForm):
    def clean(self):
        username = self.cleaned_data.get("username") or ""
        password = self.cleaned_data.get("password")
        if not username or not password:
            return super().clean()
        ip = client_ip(self.request) if self.request is not None else None
        if login_blocked(username=username, ip=ip) is not None:
            raise forms.ValidationError(LOCKOUT_MESSAGE, code="throttled")
        try:
            return super().clean()
        except forms.ValidationError:
            login_failed(
                username=username,
                ip=ip,
                request_id=getattr(self.request, "request_id", ""),
            )
            raise
