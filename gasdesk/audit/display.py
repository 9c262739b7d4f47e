"""The audit log for people: Chinese names for actions, objects, sources and fields, and each change as
"field: before → after" instead of raw JSON. Used by the audit page only; the API keeps the codes."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from gasdesk.auth.roles import ROLE_LABELS
from gasdesk.conversations.models import CHANNEL_LABELS
from gasdesk.customers.models import ACCOUNT_STATUS_LABELS, ACCOUNT_TYPE_LABELS, METER_TYPE_LABELS
from gasdesk.intent_corrections.models import STATUS_LABELS as CORRECTION_STATUS_LABELS
from gasdesk.kb.models import STATUS_LABELS as KB_STATUS_LABELS
from gasdesk.routing.models import PRESENCE_LABELS
from gasdesk.tickets.lifecycle import ACTION_LABELS as TICKET_ACTION_LABELS
from gasdesk.tickets.models import PRIORITY_LABELS, TYPE_LABELS
from gasdesk.tickets.models import STATUS_LABELS as TICKET_STATUS_LABELS

ACTION_LABELS: dict[str, str] = {
    "user.create": "新建用户",
    "user.update": "修改用户",
    "auth.login_failed": "登录失败",
    "auth.lockout": "账号锁定",
    "auth.token_issue": "签发接口令牌",
    "auth.token_revoke": "吊销接口令牌",
    "auth.login": "登录",
    "auth.logout": "退出登录",
    "agent.presence": "坐席切换在线状态",
    "customer.create": "新建客户",
    "customer.update": "修改客户",
    "customer.address_add": "添加客户地址",
    "customer.import_create": "导入新建客户",
    "customer.import_update": "导入更新客户",
    "account.create": "开户",
    "account.import_create": "导入新建账户",
    "account.import_update": "导入更新账户",
    "security.identify_lockout": "身份核实锁定",
    "branch.create": "新建营业网点",
    "branch.update": "修改营业网点",
    "branch.holiday": "设置节假日营业时间",
    "conversation.accept": "接入会话",
    "conversation.transfer": "转接会话",
    "conversation.close": "结束会话",
    "conversation.link_customer": "会话关联客户",
    "conversation.emergency": "会话升级为紧急",
    "conversation.resident_left": "居民已离开",
    "conversation.resident_back": "居民已返回",
    "conversation.idle_release": "释放离开居民的会话",
    "left_message.handled": "留言已处理",
    "left_message.ticketed": "留言生成工单",
    "notification.read": "通知已读",
    "notification.read_all": "通知全部已读",
    "ticket.create": "新建工单",
    "ticket.note": "工单补充说明",
    "ticket.contact": "修改工单联系方式",
    "ticket.writeback": "外勤回写结果",
    "ticket.photo": "上传工单照片",
    "view.save": "保存筛选视图",
    "view.delete": "删除筛选视图",
    "prompt.upload": "上传语音提示录音",
    "prompt.delete": "删除语音提示录音",
    "ivr_script.save": "保存语音导航脚本",
    "ivr_script.activate": "启用语音导航版本",
    "call.end": "通话结束",
    "call.offer": "来电振铃到坐席",
    "call.softphone_answer": "坐席接听来电",
    "call.softphone_reject": "坐席拒接来电",
    "call.softphone_hangup": "坐席挂断通话",
    "call.softphone_hold": "通话保持",
    "call.softphone_resume": "通话恢复",
    "call.softphone_transfer": "通话转接",
    "call.recording_play": "播放通话录音",
    "call.recording_delete": "删除到期通话录音",
    "quality.score": "自动质检评分",
    "quality.adjust": "调整质检分数",
    "quality.review": "质检复核通过",
    "quality.appeal": "质检申诉",
    "quality.appeal_resolve": "处理质检申诉",
    "quality_sheet.save": "保存质检评分表",
    "quality_sheet.activate": "启用质检评分表",
    "report.export": "导出报表",
    "report.generate": "生成定时报表",
    "report.download": "下载定时报表",
    "followup.send": "发送回访",
    "followup.unreachable": "回访无法联系",
    "followup.cancel": "取消回访",
    "ticket.sla_at_risk": "工单即将超时",
    "ticket.sla_breached": "工单超时升级",
    **{f"ticket.{action}": f"工单{label}" for action, label in TICKET_ACTION_LABELS.items()},
    "appointment.book": "预约上门",
    "appointment.reschedule": "改约",
    "appointment.cancel": "取消预约",
    "config.appointment_slots": "生成预约时段",
    "config.skill_group": "配置技能组",
    "config.handoff_rule": "配置转人工规则",
    "config.agent_skills": "配置坐席技能",
    "config.ticket_routing_rule": "配置工单分派规则",
    "config.sla_policy": "配置时限（SLA）",
    "config.followup_policy": "配置回访策略",
    "config.webhook": "配置 Webhook",
    "config.notice_template": "配置通知模板",
    "config.kb_article": "修改知识库",
    "config.kb_suggestion": "处理知识库建议",
    "config.outage": "发布停气/停热公告",
    "config.wechat_menu": "修改公众号菜单",
    "config.wechat_menu_push": "推送公众号菜单",
    "config.wall_threshold": "配置大屏阈值",
    "contact.bind": "绑定联系人",
    "contact.subscribe": "关注公众号",
    "contact.unsubscribe": "取消关注公众号",
    "contact.opt_out": "退订通知",
    "contact.opt_in": "恢复通知",
    "outbound.queue": "发送通知",
    "notice.webchat": "网页聊天通知",
    "outbound.fail": "消息发送失败",
    "emergency.open": "开启紧急事件",
    "emergency.escalate": "紧急事件逐级通知",
    "emergency.exhausted": "紧急事件升级到底无人确认",
    "emergency.acknowledge": "确认紧急事件",
    "emergency.close": "关闭紧急事件",
    "emergency.cancel": "取消紧急事件",
    "config.emergency_policy": "配置应急升级路径",
    "config.duty_add": "添加值班",
    "config.duty_remove": "删除值班",
    "config.staff_contact": "配置应急联系方式",
    "hours.override": "设置节假日安排",
    "hours.override_delete": "删除节假日安排",
    "callback.request": "预约回拨",
    "callback.dial": "拨打回拨电话",
    "callback.outcome": "记录回拨结果",
    "outage.create": "新建停气/停暖公告",
    "outage.edit": "修改公告草稿",
    "outage.publish": "发布停气/停暖公告",
    "outage.update": "更新停气/停暖公告",
    "outage.close": "结束停气/停暖公告",
    "outage.import_customers": "导入受影响户号",
    "bot.correct_intent": "纠正机器人意图",
    "bot.review_correction": "审核意图纠正",
    "bot.model_deploy": "部署重新训练的意图模型",
    "keys.rotate": "轮换个人信息加密密钥",
    "config.roster_rules": "修改排班规则",
    "config.roster_shift": "保存班次",
    "ichat.create": "新建内部会话",
    "ichat.file": "内部沟通发送文件",
    "ichat.member_add": "添加内部会话成员",
    "ichat.member_remove": "移除内部会话成员",
    "ichat.message": "内部沟通发送消息",
    "ichat.purge": "清理过期内部消息",
    "ichat.read": "内部会话已读",
    "ichat.share": "分享工单/会话卡片",
    "job.discard": "丢弃后台任务",
    "job.retry": "重试后台任务",
    "roster.edit": "修改排班",
    "roster.generate": "自动生成排班",
    "roster.leave_add": "登记请假",
    "roster.leave_remove": "删除请假",
    "roster.preference_add": "登记排班偏好",
    "roster.preference_remove": "删除排班偏好",
    "roster.publish": "发布排班",
    "tag_rule.create": "新建智能标签规则",
    "tag_rule.update": "修改智能标签规则",
    "tag.auto": "按规则自动打标签",
    "tag.add": "添加标签",
    "tag.remove": "移除标签",
    "tag.stranger": "标记陌生号码",
    "address_link.confirm": "确认地址关联号码",
    "address_link.remove": "移除地址关联号码",
    "training.material_add": "添加学习资料",
    "training.bank_add": "新建题库",
    "training.question_add": "添加考题",
    "training.exam_add": "新建考试",
    "training.attempt_start": "开始考试",
    "training.attempt_answer": "保存考试答案",
    "training.attempt_submit": "考试交卷",
    "training.attempt_expire": "考试超时自动交卷",
    "training.scenario_save": "保存陪练场景",
    "training.sparring_start": "开始AI陪练",
    "training.sparring_turn": "AI陪练回复",
    "training.sparring_finish": "结束AI陪练",
    "video.invite": "邀请视频协助",
    "video.accept": "居民同意视频协助",
    "video.decline": "居民拒绝视频协助",
    "video.end": "结束视频协助",
    "video.snapshot": "视频协助截图",
    "video.recording": "保存视频协助录像",
}

ENTITY_LABELS: dict[str, str] = {
    "user": "用户", "api_token": "接口令牌", "customer": "客户", "account": "账户", "branch": "营业网点",
    "conversation": "会话", "ticket": "工单", "appointment": "预约", "config": "配置", "left_message": "留言",
    "saved_view": "筛选视图", "followup": "回访", "contact": "联系人", "outbound": "外发消息", "prompt": "语音提示",
    "call": "通话", "ivr_script": "语音导航脚本", "quality_score": "质检记录", "quality_sheet": "质检评分表",
    "report": "报表", "report_file": "报表文件", "emergency": "紧急事件", "intent_correction": "意图纠正",
    "intent_model": "意图模型", "data_keys": "加密密钥", "tag_rule": "标签规则", "tag_assignment": "标签", "address": "地址",
    "training_material": "学习资料", "training_bank": "题库", "training_exam": "考试", "training_attempt": "答卷",
    "training_scenario": "陪练场景", "training_sparring": "陪练记录", "video_session": "视频协助",
}
# The prefix of a config object's id ("kb_article:12") names what was configured.
CONFIG_LABELS: dict[str, str] = {
    "kb_article": "知识文章", "webhook": "Webhook", "outage": "停气/停热公告", "skill_group": "技能组",
    "handoff_rule": "转人工规则", "routing_rule": "工单分派规则", "sla": "时限（SLA）", "followup": "回访策略",
    "slots": "预约时段", "wechat_menu": "公众号菜单", "notice_template": "通知模板", "wall_threshold": "大屏阈值",
    "emergency_policy": "应急升级路径", "duty": "值班",
}

SOURCE_LABELS: dict[str, str] = {
    "web": "网页", "api": "接口", "cli": "命令行", "cli-import": "命令行导入", "import": "导入", "job": "后台任务",
    "bot": "智能客服", "webchat": "网页聊天", "crew": "外勤手机端", "staff": "工作台", "resolver": "自动分派",
    "seed-demo": "演示数据", "test": "测试", "wechat": "微信", "sms": "短信", "callback": "渠道回执",
}

FIELD_LABELS: dict[str, str] = {
    # users and sign-in
    "username": "用户名", "display_name": "显示名", "role": "角色", "is_active": "启用", "password": "密码",
    "client_ip": "IP 地址", "failures": "失败次数", "expires_at": "到期时间",
    # wall-screen thresholds
    "amber": "黄色阈值", "red": "红色阈值",
    # customers, accounts, branches
    "name": "名称", "phones": "电话", "phone": "电话", "id_card": "身份证号", "tags": "标签", "account_no": "户号",
    "customer_id": "客户", "address_id": "地址", "address": "地址", "account_type": "用户类型", "has_gas": "燃气",
    "has_heating": "热力", "status": "状态", "meter_type": "表类型", "meter_serial": "表号",
    "heating_area_m2": "采暖面积（㎡）", "district": "区", "weekly_hours": "营业时间", "services": "业务",
    "day": "日期", "hours": "时间", "note": "备注",
    # tickets, appointments, conversations
    "number": "工单号", "type": "类型", "priority": "优先级", "team_id": "班组", "handler_id": "处理人",
    "crew_id": "外勤人员", "service_type": "服务项目", "ticket": "工单", "slot": "时段", "service": "服务项目",
    "reason": "原因", "agent_id": "坐席", "skill_group_id": "技能组", "state": "状态", "closed_by": "结束方",
    "how": "关联方式", "presence": "在线状态", "query": "筛选条件", "photos": "照片数", "materials": "材料数",
    "resolved": "已解决", "photo_id": "照片", "size": "大小（字节）", "attempts": "发送次数", "ticket_id": "工单",
    "first_day": "开始日期", "windows": "时段", "capacity": "容量", "created": "新建数量",
    # configuration
    "position": "顺序", "ticket_types": "工单类型", "districts": "区", "keywords": "关键词",
    "customer_tags": "客户标签", "complaint_mode": "投诉模式", "enabled": "启用", "ticket_type": "工单类型",
    "respond_minutes": "响应时限（分钟）", "resolve_minutes": "办结时限（分钟）", "at_risk_ratio_pct": "预警比例（%）",
    "delay_minutes": "延迟（分钟）", "max_attempts": "最多尝试次数", "retry_minutes": "重试间隔（分钟）",
    "on_dissatisfied": "不满意时", "dissatisfied_max_score": "不满意分数线", "routing_mode": "分配方式",
    "sticky_returning": "老客户优先原坐席", "queue_capacity": "排队上限", "working_hours": "工作时间",
    "default_handle_s": "平均处理时长（秒）", "kind": "类型", "params": "参数", "skill_group_ids": "技能组",
    "max_concurrent": "最大并发会话", "url": "地址", "events": "事件", "text": "内容", "id": "编号",
    "provider_template_id": "模板 ID", "fields": "变量对应", "body": "正文",
    # quality inspection
    "score": "分数", "review_status": "复核状态", "appeal_status": "申诉状态", "sample_reason": "抽检原因",
    "sheet_version": "评分表版本", "version": "版本", "active_version": "原启用版本", "rules": "规则数",
    "conversation_id": "会话",
    # knowledge base
    "title": "标题", "questions": "问法", "answer": "答案", "category": "分类", "channels": "渠道",
    "valid_from": "生效日期", "valid_to": "失效日期",
    # reports
    "format": "格式", "grain": "周期", "period": "统计周期", "team": "班组", "channel": "渠道", "bytes": "大小（字节）",
    "files": "文件", "filename": "文件名",
    # emergency escalation (gasdesk/emergency)
    "level": "风险等级", "source": "来源", "outage_id": "停气公告", "policy_version": "升级路径版本", "seq": "通知轮次", "step": "步骤",
    "notified": "通知（人员:渠道:状态）", "via": "确认方式", "summary": "处置总结", "steps": "升级步骤", "duty_role": "值班岗位",
    "starts_at": "开始时间", "ends_at": "结束时间", "mobile": "手机", "wechat": "微信",
    # learning from production (gasdesk/intent_corrections)
    "message_id": "消息", "intent": "意图", "predicted_intent": "机器人识别的意图", "predicted_confidence": "置信度",
    "corrections": "纠正条数", "training_examples": "训练样本数", "model_file": "模型文件", "fingerprint": "模型指纹",
    "figures": "评测结果", "correction_ids": "纠正编号",
}

# Where one field name means something more precise for one kind of object.
_ENTITY_FIELD_LABELS: dict[str, dict[str, str]] = {"customer": {"name": "姓名"}, "user": {"display_name": "姓名"}}
_ID_FIELDS = frozenset({"customer_id", "address_id", "team_id", "handler_id", "crew_id", "agent_id", "skill_group_id",
                        "id", "ticket_id", "photo_id"})
_APPOINTMENT_STATUS = {"booked": "已预约", "cancelled": "已取消", "done": "已完成"}


_Key = TypeVar("_Key", bound=str)


def _by_value(labels: Mapping[_Key, str]) -> dict[str, str]:
    """Labels keyed by the plain stored value: audit rows hold strings, not enum members."""
    return {str(key): label for key, label in labels.items()}


_ROLE_VALUES = {r.value: label for r, label in ROLE_LABELS.items()}
_CHANNEL_VALUES = {c.value: label for c, label in CHANNEL_LABELS.items()}
PRESENCE_VALUE_LABELS = {p.value: label for p, label in PRESENCE_LABELS.items()}
_VALUE_LABELS: dict[str, Mapping[str, str]] = {
    "role": _ROLE_VALUES,
    "channel": _CHANNEL_VALUES,
    "channels": {**_CHANNEL_VALUES, "agent": "坐席"},
    "type": _by_value(TYPE_LABELS),
    "ticket_type": _by_value(TYPE_LABELS),
    "ticket_types": _by_value(TYPE_LABELS),
    "priority": _by_value(PRIORITY_LABELS),
    "account_type": _by_value(ACCOUNT_TYPE_LABELS),
    "meter_type": _by_value(METER_TYPE_LABELS),
    "on_dissatisfied": {"reopen": "重新打开工单", "complaint": "转投诉", "none": "不处理"},
    "how": {"agent": "坐席关联", "resident_identity": "居民核实身份", "bot_identity": "智能客服核实身份"},
    "closed_by": {"agent": "坐席", "resident": "居民", "idle": "居民长时间离开", "bot": "智能客服", "system": "系统"},
    "presence": PRESENCE_VALUE_LABELS,
}
_STATUS_LABELS: dict[str, Mapping[str, str]] = {
    "ticket": _by_value(TICKET_STATUS_LABELS), "account": _by_value(ACCOUNT_STATUS_LABELS), "config": KB_STATUS_LABELS,
    "appointment": _APPOINTMENT_STATUS, "intent_correction": _by_value(CORRECTION_STATUS_LABELS),
}
EMPTY = "（空）"


@dataclass(frozen=True)
class Change:
    """One changed field as people read it."""

    field: str
    before: str | None  # None: the field did not exist before (a creation)
    after: str | None  # None: the field is gone afterwards


def action_label(action: str) -> str:
    """The action in Chinese; an action without a label yet shows its object type and code."""
    if action in ACTION_LABELS:
        return ACTION_LABELS[action]
    prefix = action.split(".", 1)[0]
    return f"{ENTITY_LABELS.get(prefix, prefix)}：{action}"


def entity_label(entity_type: str, entity_id: str | None) -> str:
    """The object in Chinese: 工单 #12, 配置 知识文章 #3."""
    if entity_type == "config" and entity_id and ":" in entity_id:
        kind, _, rest = entity_id.partition(":")
        return f"{CONFIG_LABELS.get(kind, kind)} {rest}".strip()
    label = ENTITY_LABELS.get(entity_type, entity_type)
    return f"{label} #{entity_id}" if entity_id else label


def source_label(source: str) -> str:
    return SOURCE_LABELS.get(source, source)


def _text(value: Any, field: str, entity_type: str) -> str:
    if value is None or value == "" or value == [] or value == {}:
        return EMPTY
    if isinstance(value, bool):
        return "是" if value else "否"
    if isinstance(value, list):
        return "、".join(_text(v, field, entity_type) for v in value)
    if isinstance(value, dict):
        return "；".join(f"{FIELD_LABELS.get(str(k), k)}：{_text(v, str(k), entity_type)}" for k, v in value.items())
    if field == "password":
        return "已修改"
    if field in _ID_FIELDS and isinstance(value, int):
        return f"#{value}"
    labels = _STATUS_LABELS.get(entity_type) if field == "status" else _VALUE_LABELS.get(field)
    if labels is not None and str(value) in labels:
        return labels[str(value)]
    if isinstance(value, int | float | str):
        return str(value)
    return json.dumps(value, ensure_ascii=False, default=str)


def describe_changes(changes: Mapping[str, Any] | None, entity_type: str) -> list[Change]:
    """The changed fields of one audit row ({"before": {...}, "after": {...}}), in the order recorded."""
    if not changes:
        return []
    before = changes.get("before") or {}
    after = changes.get("after") or {}
    fields = list(after) + [k for k in before if k not in after]
    names = {**FIELD_LABELS, **_ENTITY_FIELD_LABELS.get(entity_type, {})}
    return [
        Change(
            field=names.get(name, name),
            before=_text(before[name], name, entity_type) if name in before else None,
            after=_text(after[name], name, entity_type) if name in after else None,
        )
        for name in fields
    ]
