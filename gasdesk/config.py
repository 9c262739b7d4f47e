"""One Settings object for the whole application, read from ``GASDESK_*`` environment variables."""

from __future__ import annotations

import base64
import os
import re
import secrets
import stat
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, ValidationInfo, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, PydanticBaseSettingsSource, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parent.parent

# Keys that earlier versions shipped in the source code: anyone can read them, so they are refused in
# production even when configured explicitly (someone may have copied them into a .env file).
PUBLISHED_SECRET_KEYS = frozenset({"dev-secret-key-change-me-dev-secret-key"})
PUBLISHED_DATA_KEYS = frozenset({base64.urlsafe_b64encode(b"gasdesk-dev-data-key-32-bytes!!!").decode()})


class InsecureConfiguration(RuntimeError):
    """Raised when production mode is started with missing, published or weak secrets."""


def new_secret_key() -> str:
    return secrets.token_urlsafe(48)


def new_data_key() -> str:
    return base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()


# The field-encryption key ring (GASDESK_DATA_KEYS): "id:key" entries, the first one encrypts. "legacy" (no key)
# stands for the key derived from GASDESK_DATA_KEY, which wrote every "v1:" value before key ids existed.
LEGACY_KEY_ID = "legacy"
_KEY_ID_RE = re.compile(r"^[A-Za-z0-9_-]{1,20}$")


def parse_key_ring(value: str) -> list[tuple[str, str | None]]:
    """``"k2026:<key>,legacy"`` → ``[("k2026", "<key>"), ("legacy", None)]``; the first entry is the primary.

    Raises ``ValueError`` for an empty ring, a bad or repeated id, or a key that is not 32 bytes of urlsafe
    base64 (urlsafe base64 has no ``:`` or ``,``, so the format needs no escaping)."""
    entries: list[tuple[str, str | None]] = []
    for part in (p.strip() for p in value.split(",")):
        if not part:
            continue
        key_id, sep, key = part.partition(":")
        key_id = key_id.strip()
        if not _KEY_ID_RE.match(key_id):
            raise ValueError(f"GASDESK_DATA_KEYS: bad key id {key_id!r} (letters, digits, _ or -, at most 20)")
        if any(key_id == known for known, _ in entries):
            raise ValueError(f"GASDESK_DATA_KEYS: key id {key_id!r} appears twice")
        if key_id == LEGACY_KEY_ID:
            if sep:
                raise ValueError("GASDESK_DATA_KEYS: 'legacy' takes no key (it is GASDESK_DATA_KEY's)")
            entries.append((key_id, None))
            continue
        if not sep:
            raise ValueError(f"GASDESK_DATA_KEYS: key id {key_id!r} has no key (write id:key)")
        try:
            raw = base64.urlsafe_b64decode(key.strip().encode())
        except Exception as exc:  # noqa: BLE001 - any decoding problem is the same user error
            raise ValueError(f"GASDESK_DATA_KEYS: the key of {key_id!r} is not urlsafe base64") from exc
        if len(raw) != 32:
            raise ValueError(f"GASDESK_DATA_KEYS: the key of {key_id!r} must decode to exactly 32 bytes")
        entries.append((key_id, key.strip()))
    if not entries:
        raise ValueError("GASDESK_DATA_KEYS is set but names no key")
    return entries


def load_or_create_key(path: Path, make: Callable[[], str]) -> str:
    """The key stored in ``path``; on first use a fresh one, written atomically with mode 0600.

    Two processes starting at once both write a temporary file and try to link it into place: exactly
    one wins and the other reads the winner's key, so they never end up with different keys.
    """
    if not path.exists():
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "w") as fh:
                fh.write(make() + "\n")
                fh.flush()
                os.fsync(fh.fileno())
            try:
                os.link(tmp, path)  # atomic, and fails if another process got there first
            except FileExistsError:
                pass
        finally:
            tmp.unlink(missing_ok=True)
    mode = path.stat().st_mode
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise InsecureConfiguration(f"密钥文件 {path} 的权限过宽（{stat.filemode(mode)}），请执行 chmod 600 {path}")
    value = path.read_text().strip()
    if not value:
        raise InsecureConfiguration(f"密钥文件 {path} 为空；删除它以重新生成（加密数据将无法读取）")
    return value


class Settings(BaseSettings):
    """Runtime configuration. Every field maps to ``GASDESK_<FIELD>``."""

    model_config = SettingsConfigDict(env_prefix="GASDESK_", env_file=".env", extra="ignore")

    @classmethod
    def settings_customise_sources(cls, settings_cls: type[BaseSettings], init_settings: PydanticBaseSettingsSource,
                                   env_settings: PydanticBaseSettingsSource,
                                   dotenv_settings: PydanticBaseSettingsSource,
                                   file_secret_settings: PydanticBaseSettingsSource,
                                   ) -> tuple[PydanticBaseSettingsSource, ...]:
        # The .env source walks every field even when there is no file: half of a build's ~4 ms, paid again
        # each time the test suite resets the settings.
        if not Path(".env").is_file():
            return init_settings, env_settings, file_secret_settings
        return init_settings, env_settings, dotenv_settings, file_secret_settings

    env: Literal["development", "test", "production"] = "development"
    database_url: str = f"sqlite+aiosqlite:///{PROJECT_ROOT / 'var' / 'gasdesk.db'}"
    redis_url: str | None = None
    # SQLite allows one writer: with one pooled connection, transactions queue in asyncio instead of in
    # SQLite's busy handler (which sleeps in 10–100 ms steps and ruins chat latency).
    sqlite_pool_size: int = Field(default=1, ge=1, le=20)
    # Signs session cookies and visitor tokens. Unset outside production: a random key generated on
    # first run and kept in ``<var_dir>/secret_key`` (mode 0600). Production must set it explicitly.
    secret_key: str | None = None
    # 32 bytes, urlsafe base64. Encrypts personal data (AES-GCM) and keys the blind indexes (HMAC).
    # Unset outside production: generated once into ``<var_dir>/data_key``. Production must set it.
    data_key: str | None = None
    # The field-encryption key ring, for rotating the key of encrypted columns without downtime
    # (docs/operations.md): "id:key,…", the first entry encrypts, every entry decrypts values carrying its id;
    # "legacy" stands for the key derived from data_key (every value written before key ids). Unset: "legacy"
    # alone. data_key itself keeps keying the blind indexes and sealed files.
    data_keys: str | None = None
    # Local state of a development install: generated keys (and, by default, the SQLite file and uploads).
    var_dir: Path = PROJECT_ROOT / "var"
    display_timezone: str = "Asia/Shanghai"
    host: str = "127.0.0.1"
    port: int = 8000
    session_cookie: str = "gasdesk_session"
    session_max_age_s: int = 12 * 3600
    cookie_secure: bool = False
    api_token_ttl_s: int = 8 * 3600
    # Failed logins in a row per (username, client IP) before that pair is locked out for login_lockout_s
    # (earlier failures already add a growing delay). Other addresses can still log in.
    login_max_failures: int = Field(default=5, ge=1)
    login_lockout_s: int = Field(default=15 * 60, ge=1)
    # Other origins (scheme://host[:port], comma-separated) whose pages may send state-changing requests
    # with a staff cookie; needed only when a reverse proxy does not pass the public Host header on.
    allowed_origins: Annotated[list[str], NoDecode] = []
    # CSP frame-ancestors of /chat, the only page other sites may frame (widget.js). "*" = any site;
    # e.g. "https://www.example-gas.cn https://*.example-gas.cn" to restrict it.
    chat_frame_ancestors: str = "*"
    # Webhooks may not target loopback, private, link-local or other internal addresses, unless the
    # URL's host is listed here (comma-separated host names or IP addresses).
    webhook_allow_private_hosts: Annotated[list[str], NoDecode] = []
    upload_dir: Path = PROJECT_ROOT / "var" / "uploads"
    # A resident who closed the chat (no socket left) while queued or served is marked 居民已离开 in the
    # console after resident_left_after_s; resident_release_after_s later the conversation ends by itself,
    # so it no longer takes a place in the agent's capacity (conversations/idle.py, a periodic task).
    resident_left_after_s: int = Field(default=120, ge=1, le=24 * 3600)
    resident_release_after_s: int = Field(default=600, ge=0, le=7 * 24 * 3600)
    # Each app process runs the background worker (jobs, SLA scan, follow-ups) unless turned off,
    # e.g. when a separate `gasdesk worker` process does it.
    run_worker: bool = True
    # A running job whose worker died is taken again by another worker once its timeout and this grace have
    # passed since the attempt started (gasdesk/jobs/queue.py); the grace covers clock skew between hosts.
    job_lease_grace_s: int = Field(default=60, ge=0, le=3600)
    # Scheduled reports (gasdesk/reports/exports/service.py): the overview report as xlsx and PDF for
    # supervisors, daily for yesterday and on Mondays for last week, from this local hour on; stored sealed
    # under <var_dir>/reports. The test suite turns it off (tests/conftest.py); its own tests turn it on.
    reports_schedule_enabled: bool = True
    reports_schedule_hour: int = Field(default=8, ge=0, le=23)
    # Report files are rendered in this many processes of their own (reports/render.py), so a yearly
    # export does not hold the GIL against chat; 0 renders in a thread of the web process.
    reports_render_processes: int = Field(default=1, ge=0, le=8)
    # Those processes run at nice 19 in Linux's idle scheduling class, reading as drawing, and in the machine's
    # idle CPU cgroup where they may make one (else an autogroup of their own): chat first, reports when a
    # core is free (reports/idle_group.py).
    # The test suite turns it off (tests/conftest.py): its two workers keep both cores busy, and a test waiting
    # for an idle-class render waited 10-25 s for a render of 1-4 s. tests/reports checks the default.
    reports_render_idle: bool = True
    # "background": this web process comes after every other on the machine (nice 19, and its session's
    # autogroup where it leads one: system/cpu_priority.py). For a web process that serves only the report
    # routes (deploy/nginx/gasdesk.conf's gasdesk_reports), so a supervisor's export never takes CPU that chat's
    # processes are waiting for. Under systemd set CPUWeight= on that unit as well (docs/production-checklist.md).
    web_cpu_priority: Literal["normal", "background"] = "normal"
    # ... and draw with at most this share of one core (reports/render.py ``cpu_share``): on a small machine
    # even an idle-class process that keeps a core busy moves chat's p99 (docs/performance.md), so a render
    # pauses in proportion to the CPU it used. Unset: by the cores this process may use — 0.25 on 2, 0.5 on 3,
    # no cap from 5 (``render_cpu_share``). 1 = no cap (the test suite, with the idle class off).
    reports_render_cpu_share: float | None = Field(default=None, gt=0, le=1)
    import_batch_size: int = Field(default=2000, ge=1, le=100_000)
    # The resident bot: "nlu" (offline understanding, guided flows, knowledge base) or "rules" (menu only).
    bot_engine: Literal["nlu", "rules"] = "nlu"
    # Billing: empty = built-in local ledger; otherwise the utility's billing system over HTTP.
    billing_url: str | None = None
    billing_token: str | None = None
    billing_timeout_s: float = 3.0
    # Overrides of the public-surface limits in gasdesk/security/limits.py, e.g. {"message.ip": "400/10"}
    # (count/seconds), and client addresses exempt from per-IP limits (e.g. a load generator on the host).
    rate_limits: dict[str, str] = Field(default_factory=dict)
    limit_exempt_ips: list[str] = Field(default_factory=list)
    # WeChat official account (公众号), as configured in its 基本配置 page. No app id = the channel is off.
    # wechat_token answers URL verification and signs every callback; wechat_aes_key (the 43-character
    # EncodingAESKey) turns on safe mode (encrypt_type=aes). wechat_api_base points at WeChat's API, or at the
    # built-in fake (the simulator, tests).
    wechat_app_id: str | None = None
    wechat_app_secret: str | None = None
    wechat_token: str | None = None
    wechat_aes_key: str | None = None
    wechat_api_base: str = "https://api.weixin.qq.com"
    # SMS: "log" keeps messages in the outbox page (no account needed); "aliyun" or "tencent" send for real
    # with the account below (sms_endpoint overrides the provider's address: the simulator, tests).
    sms_provider: Literal["log", "aliyun", "tencent"] = "log"
    sms_access_key_id: str | None = None
    sms_access_key_secret: str | None = None
    sms_sign_name: str = "燃气客服"
    sms_sdk_app_id: str | None = None  # Tencent Cloud's SmsSdkAppId
    sms_region: str = "ap-guangzhou"
    sms_endpoint: str | None = None
    # Shared secret the provider's delivery-receipt and uplink callbacks must carry (query ?token=).
    sms_callback_token: str | None = None
    sms_per_number_per_day: int = Field(default=10, ge=1, le=1000)
    # No SMS to residents in these local hours (emergencies excepted): "21:00-08:00"; empty = none.
    sms_quiet_hours: str = "21:00-08:00"
    # Said in notices to residents (预约确认, 工单进度…): the number to call with questions.
    service_hotline: str = Field(default="96777", max_length=20)
    # Outage broadcasts (gasdesk/broadcasts): messages handed to each channel per second — at most the
    # provider's rate limit (WeChat template messages, the SMS account's QPS). One worker process sends about
    # 90 messages a second in all (docs/performance.md); the defaults stay below that together.
    broadcast_wechat_per_s: int = Field(default=40, ge=1, le=10_000)
    broadcast_sms_per_s: int = Field(default=40, ge=1, le=10_000)
    # The utility's 办事指南 page (a short link, at most 35 characters): the 办理指引 SMS links to it. Empty =
    # guidance goes by WeChat only.
    guidance_url: str = Field(default="", max_length=35)
    # Holiday notices (gasdesk/hours): the bot's greeting and branch answers, the IVR welcome and the web chat's
    # banner announce a holiday this many days before it starts (0 = only during it). The hotline (skill groups'
    # hours) follows statutory holidays only when hotline_observes_holidays; counters (branches) always do.
    holiday_notice_days: int = Field(default=7, ge=0, le=60)
    hotline_observes_holidays: bool = False
    # Peak-hour guidance (gasdesk/callbacks): above this expected wait the widget, WeChat and the IVR tell the
    # resident the wait and offer self-service or a callback that keeps their place in the queue.
    peak_wait_threshold_s: int = Field(default=300, ge=0, le=24 * 3600)
    # A callback not reached is tried again (back in the queue) at most this many times in all.
    callback_max_attempts: int = Field(default=3, ge=1, le=10)
    # The hotline (gasdesk/telephony). Calls beyond telephony_max_concurrent_calls hear the overflow prompt and are
    # hung up; the limit is per process (the calls this process carries: N hotline processes take N × the limit).
    # A caller waits in the queue at most telephony_queue_wait_limit_s; an agent's phone rings at most
    # telephony_agent_answer_timeout_s. Recordings (<var_dir>/recordings) are deleted after
    # telephony_recording_retention_days by a periodic task; telephony_queue_poll_s: how often a waiting call
    # looks at its conversation's state.
    telephony_max_concurrent_calls: int = Field(default=60, ge=1, le=10_000)
    telephony_queue_wait_limit_s: float = Field(default=600, ge=0.1, le=4 * 3600)
    telephony_agent_answer_timeout_s: float = Field(default=30, ge=0.1, le=300)
    telephony_recording_retention_days: int = Field(default=180, ge=1, le=3650)
    telephony_queue_poll_s: float = Field(default=1.0, ge=0.01, le=30)
    # Internal chat (gasdesk/internal_chat): messages and their files older than this are deleted by the periodic
    # internal_chat.retention task (GASDESK_INTERNAL_CHAT_RETENTION_DAYS).
    internal_chat_retention_days: int = Field(default=365, ge=1, le=3650)
    # The development simulator (/dev/simulator: a WeChat user and an SMS phone against this server through
    # the real protocols, with fake WeChat and SMS APIs in-process). Never in production.
    simulator: bool = True
    # Where the fitted intent model is kept between processes (a few MB; trained again whenever the NLU code,
    # data or library versions change). Unset: <var_dir>/cache. Empty string: never cached.
    nlu_cache_dir: str | None = None
    # Where PDF exports keep the CJK font's common-characters face (~2 MB, built from the installed font once
    # per machine; gasdesk/reports/pdf.py). Unset: <var_dir>/cache. Empty string: never built (the whole face).
    report_font_cache_dir: str | None = None
    # How often each process looks for a newly deployed intent model (`gasdesk bot retrain`, under
    # <var_dir>/nlu; gasdesk/bot/nlu/model_store.py): a deployment reaches every process within this many seconds.
    nlu_model_check_s: float = Field(default=30.0, ge=0, le=3600)
    llm_base_url: str | None = None
    llm_api_key: str | None = None
    llm_model: str = "gpt-4o-mini"
    # Hotline prompts by offline TTS (telephony/tts.py): espeak-ng's voice (cmn-latn-pinyin reads 汉字 with
    # tones; plain cmn does not) and speed in words per minute. Synthesised prompts are cached under
    # <var_dir>/prompts/cache; admins' recorded prompts (WAV/MP3, converted to 8 kHz) under prompts/uploaded.
    tts_voice: str = Field(default="cmn-latn-pinyin", pattern=r"^[A-Za-z0-9_+-]{1,40}$")
    tts_rate_wpm: int = Field(default=150, ge=80, le=400)
    tts_max_chars: int = Field(default=400, ge=1, le=5000)
    tts_timeout_s: float = Field(default=20.0, gt=0, le=300)
    tts_upload_max_bytes: int = Field(default=5 * 1024 * 1024, ge=1024, le=100 * 1024 * 1024)
    tts_upload_max_seconds: float = Field(default=180.0, gt=0, le=3600)
    # FreeSWITCH production mode (telephony/freeswitch): the dialplan's `socket` application connects to
    # this listener once per call (outbound Event Socket, see docs/freeswitch.md). freeswitch_host/port/
    # password reach FreeSWITCH's own Event Socket (inbound, event_socket.conf.xml) for api commands and
    # health checks; the password is a secret and never logged.
    freeswitch_enabled: bool = False
    freeswitch_listen_host: str = "127.0.0.1"
    freeswitch_listen_port: int = Field(default=8084, ge=0, le=65535)
    freeswitch_host: str = "127.0.0.1"
    freeswitch_port: int = Field(default=8021, ge=1, le=65535)
    freeswitch_password: SecretStr | None = None
    freeswitch_max_calls: int = Field(default=200, ge=1, le=10_000)
    freeswitch_command_timeout_s: float = Field(default=5.0, gt=0, le=120)
    # What FreeSWITCH dials to reach an agent's phone registered with it ({agent_id}: the gasdesk user id).
    freeswitch_agent_dial: str = Field(default="user/{agent_id}", pattern=r"^[A-Za-z0-9_/@.:{}=+-]{1,120}$")
    # Start the enabled hotline back-ends inside the web app (one-process mode) instead of `gasdesk hotline`.
    hotline_in_app: bool = False
    # Speech recognition for the hotline (telephony/asr.py): a FunASR runtime server's WebSocket address,
    # e.g. ws://127.0.0.1:10095. Empty = off (callers answer by DTMF only). Nothing downloads models here.
    asr_url: str = ""
    asr_mode: Literal["offline", "2pass"] = "offline"
    asr_timeout_s: float = Field(default=10.0, gt=0, le=120)
    asr_max_audio_s: float = Field(default=30.0, gt=0, le=600)

    # Embedded media back-end (telephony/sip): the built-in SIP user agent on UDP that answers hotline calls.
    sip_enabled: bool = False
    sip_host: str = "127.0.0.1"  # listen address (SIP and RTP)
    sip_port: int = Field(default=5060, ge=0, le=65535)
    sip_advertised_host: str | None = None  # the address put in Contact/SDP when sip_host is 0.0.0.0 or NATed
    sip_max_calls: int = Field(default=60, ge=1, le=2000)  # calls that reach the IVR at once
    sip_max_overflow_calls: int = Field(default=8, ge=0, le=2000)  # beyond: callers hearing the busy prompt
    rtp_port_min: int = Field(default=20000, ge=1024, le=65535)
    rtp_port_max: int = Field(default=20999, ge=1024, le=65535)
    # Outbound calls (telephony/originate.py): emergency phone alerts and callbacks placed by gasdesk. Off until a
    # route is set: the embedded back-end sends INVITEs to sip_outbound_proxy (host:port of a SIP gateway/trunk,
    # the digits in the Request-URI); FreeSWITCH dials sofia/gateway/<freeswitch_outbound_gateway>/<number>.
    # Limits: outbound_max_calls at once (per hotline process), a number rung at most outbound_calls_per_number
    # times in outbound_rate_window_min, a phone rings outbound_ring_timeout_s. outbound_caller_id: the number
    # shown to the callee (empty: the trunk's default). emergency_phone_poll_s: how often the hotline looks for
    # emergency phone alerts to place.
    sip_outbound_proxy: str = Field(default="", pattern=r"^$|^[A-Za-z0-9.-]{1,253}:[0-9]{1,5}$")
    freeswitch_outbound_gateway: str = Field(default="", pattern=r"^[A-Za-z0-9_.-]{0,64}$")
    outbound_caller_id: str = Field(default="", pattern=r"^\+?[0-9]{0,20}$")
    outbound_max_calls: int = Field(default=4, ge=1, le=200)
    outbound_calls_per_number: int = Field(default=3, ge=1, le=100)
    outbound_rate_window_min: int = Field(default=10, ge=1, le=24 * 60)
    outbound_ring_timeout_s: float = Field(default=30.0, ge=1, le=120)
    emergency_phone_poll_s: float = Field(default=2.0, ge=0.05, le=60)

    # Video assist (视频协助, gasdesk/video, docs/video-assist.md): the browsers' ICE servers. Empty (the default):
    # host candidates only — the resident's and the agent's browsers must reach each other directly (a LAN; the
    # tests on loopback) and no outside server is ever contacted. Real networks need a TURN server (coturn):
    # video_turn_urls with either video_turn_secret (coturn's static-auth-secret: gasdesk hands out credentials
    # valid video_turn_ttl_s, preferred) or a fixed video_turn_username/video_turn_password. The secrets are never
    # rendered into the public chat page: a resident gets credentials only inside an invitation.
    # comma-separated, e.g. GASDESK_VIDEO_TURN_URLS=turn:turn.example.com:3478,turns:turn.example.com:5349
    video_stun_urls: Annotated[list[str], NoDecode] = []
    video_turn_urls: Annotated[list[str], NoDecode] = []
    video_turn_secret: SecretStr | None = None
    video_turn_username: str | None = Field(default=None, max_length=128)
    video_turn_password: SecretStr | None = None
    video_turn_ttl_s: int = Field(default=3600, ge=60, le=24 * 3600)
    # The agent's recording (webm) of a session the resident agreed to have recorded; above this the upload is
    # refused (413) before it is read, and the console stops recording short of it.
    video_recording_max_bytes: int = Field(default=30 * 1024 * 1024, ge=1024 * 1024, le=60 * 1024 * 1024)

    # Operations (docs/operations.md). Log lines as one JSON object each ("json") or as plain text.
    log_format: Literal["text", "json"] = "text"
    # A reverse proxy's request id header (e.g. X-Request-ID) to keep instead of generating one; only set it when
    # every request comes through that proxy, which sets or replaces the header. Unset: always generated.
    trusted_request_id_header: str | None = Field(default=None, pattern=r"^[A-Za-z0-9-]{1,64}$")
    # /metrics answers loopback clients without a token; with a token, only requests carrying it as
    # "Authorization: Bearer <token>" (from anywhere, loopback included).
    metrics_token: SecretStr | None = None

    @field_validator("allowed_origins", "webhook_allow_private_hosts", "video_stun_urls", "video_turn_urls",
                     mode="before")
    @classmethod
    def _comma_separated(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("video_stun_urls", "video_turn_urls")
    @classmethod
    def _ice_urls(cls, value: list[str], info: ValidationInfo) -> list[str]:
        scheme = ("stun:",) if info.field_name == "video_stun_urls" else ("turn:", "turns:")
        for url in value:
            if not url.startswith(scheme) or len(url) > 200 or any(c.isspace() for c in url):
                raise ValueError(f"{url!r} is not a {' or '.join(scheme)} URL")
        return value

    @field_validator("data_key")
    @classmethod
    def _data_key_is_32_bytes(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            raw = base64.urlsafe_b64decode(value.encode())
        except Exception as exc:  # noqa: BLE001 - any decoding problem is the same user error
            raise ValueError("GASDESK_DATA_KEY must be urlsafe base64") from exc
        if len(raw) != 32:
            raise ValueError("GASDESK_DATA_KEY must decode to exactly 32 bytes")
        return value

    @field_validator("data_keys")
    @classmethod
    def _key_ring_parses(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        parse_key_ring(value)
        return value.strip()

    @field_validator("wechat_aes_key")
    @classmethod
    def _aes_key_is_43_characters(cls, value: str | None) -> str | None:
        if value is not None and value != "" and len(value) != 43:
            raise ValueError("GASDESK_WECHAT_AES_KEY (EncodingAESKey) must be exactly 43 characters")
        return value or None

    @field_validator("freeswitch_agent_dial")
    @classmethod
    def _dial_names_the_agent(cls, value: str) -> str:
        if value.replace("{agent_id}", "").count("{") or value.replace("{agent_id}", "").count("}") \
                or "{agent_id}" not in value:
            raise ValueError("GASDESK_FREESWITCH_AGENT_DIAL must contain {agent_id} and no other placeholder")
        return value

    @model_validator(mode="after")
    def _rtp_port_range(self) -> Settings:
        if self.rtp_port_min > self.rtp_port_max:
            raise ValueError("GASDESK_RTP_PORT_MIN must not exceed GASDESK_RTP_PORT_MAX")
        return self

    @model_validator(mode="after")
    def _generated_keys_outside_production(self) -> Settings:
        # Production never generates keys: a key made on one host (or in one container's filesystem)
        # would differ from the next one's, and a lost data key makes every encrypted field unreadable.
        if self.env != "production":
            if self.secret_key is None:
                self.secret_key = load_or_create_key(self.var_dir / "secret_key", new_secret_key)
            if self.data_key is None:
                self.data_key = self._data_key_is_32_bytes(load_or_create_key(self.var_dir / "data_key", new_data_key))
        return self

    @property
    def signing_key(self) -> str:
        """The key that signs session cookies and visitor tokens; refuses to sign with none."""
        if not self.secret_key:
            raise InsecureConfiguration("GASDESK_SECRET_KEY is not set")
        return self.secret_key

    @property
    def data_key_bytes(self) -> bytes:
        if self.data_key is None:
            raise InsecureConfiguration("GASDESK_DATA_KEY is not set")
        return base64.urlsafe_b64decode(self.data_key.encode())

    def _cache_folder(self, setting: str | None) -> Path | None:
        """A cache directory setting: unset is ``<var_dir>/cache``, an empty string turns the cache off."""
        if setting is None:
            return self.var_dir / "cache"
        return Path(setting) if setting.strip() else None

    @property
    def nlu_cache_folder(self) -> Path | None:
        """Where the fitted intent model is cached; None when caching is off."""
        return self._cache_folder(self.nlu_cache_dir)

    @property
    def report_font_cache_folder(self) -> Path | None:
        """Where PDF exports keep the font's common-characters face; None when that cache is off."""
        return self._cache_folder(self.report_font_cache_dir)

    @property
    def simulator_enabled(self) -> bool:
        """The development simulator and its fake APIs: never in production, whatever the setting says."""
        return self.simulator and self.env != "production"

    @property
    def wechat_enabled(self) -> bool:
        return bool(self.wechat_app_id and self.wechat_token)

    @property
    def render_cpu_share(self) -> float:
        """``reports_render_cpu_share``, or when unset what this machine's cores leave beside chat: a yearly
        PDF's ~0.7 s of drawing takes ~2.8 s on 2 cores, and runs unpaused from 5."""
        if self.reports_render_cpu_share is not None:
            return self.reports_render_cpu_share
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
        return min(1.0, max(0.25, (cores - 1) / 4))

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    def check_production_safety(self) -> None:
        """Refuse to run in production without explicit, unpublished secrets and secure cookies.

        The web app, the worker and every CLI command call this before doing anything.
        """
        if self.env != "production":
            return
        problems = []
        if not self.secret_key:
            problems.append("GASDESK_SECRET_KEY must be set explicitly in production")
        elif self.secret_key in PUBLISHED_SECRET_KEYS or len(self.secret_key) < 32:
            problems.append("GASDESK_SECRET_KEY is a published default or shorter than 32 characters")
        if not self.data_key:
            problems.append("GASDESK_DATA_KEY must be set explicitly in production")
        elif self.data_key in PUBLISHED_DATA_KEYS:
            problems.append("GASDESK_DATA_KEY is a published default")
        if self.data_keys and any(key in PUBLISHED_DATA_KEYS for _, key in parse_key_ring(self.data_keys)):
            problems.append("GASDESK_DATA_KEYS holds a published default key")
        if not self.cookie_secure:
            problems.append("GASDESK_COOKIE_SECURE must be true in production")
        if problems:
            raise InsecureConfiguration("refusing to start in production: " + "; ".join(problems))


@lru_cache
def get_settings() -> Settings:
    return Settings()


def reset_settings_cache() -> None:
    """Forget cached settings (tests change the environment between runs)."""
    get_settings.cache_clear()
