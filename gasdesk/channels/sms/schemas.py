"""What the SMS callback routes answer: each provider's own acknowledgement body."""

from __future__ import annotations

from gasdesk.schemas import Out


class AliyunCallbackAck(Out):
    """Aliyun's expected answer to a pushed report or reply (``{"code": 0, "msg": "成功"}``)."""

    code: int
    msg: str


class TencentCallbackAck(Out):
    """Tencent Cloud's expected answer to a pushed status or reply (``{"result": 0, "errmsg": "OK"}``)."""

    result: int
    errmsg: str
