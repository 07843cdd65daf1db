from django.conf import settings


def client_ip(request) -> str | None:
    """The caller's address. X-Forwarded-For is trusted only through the configured
    number of proxies (WARDEN_TRUSTED_PROXIES), so an agent cannot claim an allowed IP
    by sending the header itself."""
    count = settings.WARDEN_TRUSTED_PROXIES
    if count:
        hops = [h.strip() for h in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")]
        hops = [h for h in hops if h]
        if len(hops) >= count:
            return hops[-count]
    return request.META.get("REMOTE_ADDR")
