"""Gateway settings (LIKENESS_* environment variables)."""

from __future__ import annotations

from likeness_platform.mail import MailSettings
from likeness_platform.settings import StrList


class GatewaySettings(MailSettings):
    grpc_port: int = 50050
    http_host: str = "127.0.0.1"
    http_port: int = 8080
    # Redis for rate limits shared between replicas; in-process memory when empty.
    redis_url: str = ""
    # Requests per minute per device and per client address; 0 (or less) turns that limit off, and with it its
    # call to Redis on every request (the chart requires at least 1; bench/load keeps them on, set high).
    rate_limit_device_per_minute: int = 120
    rate_limit_ip_per_minute: int = 300
    # Key for hashing IPs into rate-limit bucket names; set it when replicas share Redis.
    rate_limit_key: str = ""
    # Largest upload body accepted, bytes; other (parsed) bodies get at most 1 MiB of it (guards.PARSED_BODY_BYTES).
    max_body_bytes: int = 26 * 1024 * 1024
    # Allowed origins, comma-separated or a JSON array; CORS is off when empty.
    cors_origins: StrList = []
    upstream_deadline_seconds: float = 30.0
    # Seconds in-memory uploads (memory-only mode) stay available to the next call.
    memory_upload_ttl_seconds: int = 600
    # How often each replica drops its in-memory images of subjects without an active device (an erasure has
    # started): the lag before an erasure reaches every replica's memory.
    inline_image_check_seconds: float = 1.0
    # Honour X-Forwarded-For from this many trusted proxies in front of the gateway.
    trusted_proxies: int = 0
    # Device tokens stop working this many days after they were issued or last rotated.
    token_ttl_days: int = 90
    # Registrations allowed per hour from one network prefix (/24 for IPv4, /64 for IPv6), and per minute overall.
    registrations_per_prefix_per_hour: int = 20
    registrations_per_minute: int = 120
    # Inquiries and complaints (POST /v1/me/inquiries) one person may send per day: each is kept for a year, and
    # operators answer them by hand.
    inquiries_per_day: int = 10
    # Optional iOS App Attest at registration, off unless both are set: the app id ("<team id>.<bundle id>")
    # and Apple's App Attest root CA certificate (PEM text). iOS registrations must then carry an attestation.
    app_attest_app_id: str = ""
    app_attest_root_pem: str = ""
    # Seconds a registration challenge (POST /v1/devices/challenge) stays valid.
    attest_challenge_seconds: int = 300
    # Generations (renders) one device may have running at once.
    max_concurrent_generations_per_device: int = 2
    # Requests one worker serves at once; more get 503 from uvicorn.
    max_concurrent_requests: int = 256
    # A connection must send its complete request headers within this many seconds.
    header_timeout_seconds: float = 10.0
    # A request body must arrive within this many seconds of the headers.
    body_timeout_seconds: float = 60.0
    # Idle keep-alive connections are closed after this many seconds.
    keep_alive_timeout_seconds: float = 5.0
    # Largest incomplete request head (request line and headers) h11 buffers, bytes.
    max_header_bytes: int = 16 * 1024
    # Set when TLS terminates at a proxy in front of the gateway: responses then carry HSTS.
    tls_terminated_upstream: bool = False
    # Serve the interactive docs at /docs (from assets installed with the package; nothing from other hosts).
    docs_enabled: bool = True
    # Accounts (optional email + password, beside device tokens): on when this key is set and a mail server is
    # configured (LIKENESS_SMTP_*). The key (at least 32 characters) keys the lookup hash of addresses and the
    # hashes of one-time codes; changing it makes every account unfindable.
    account_key: str = ""
    # argon2id parameters of new password hashes (older hashes are upgraded at the next good login).
    argon2_time_cost: int = 3
    argon2_memory_kib: int = 65536
    argon2_parallelism: int = 1
    # Hashes computed at once per process (each holds argon2_memory_kib): bounds the pod's memory.
    argon2_max_concurrent: int = 2
    password_min_length: int = 12
    # Sign-in attempts (and reset confirmations) allowed per account and per network prefix (/24 IPv4, /56 IPv6)
    # in one window; counted whether or not the address has an account.
    login_attempts_per_account: int = 5
    login_attempts_per_prefix: int = 30
    login_window_seconds: int = 900
    # One-time codes (email verification, password reset): lifetime, wrong tries before the code dies, and codes
    # sent per address per hour.
    account_code_ttl_seconds: int = 900
    account_code_max_attempts: int = 5
    account_codes_per_hour: int = 5
    # Sign-ups whose code does not come back within this many hours are deleted by the sweep.
    account_unverified_ttl_hours: int = 24
