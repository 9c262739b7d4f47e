"""The consoles (staff pages) a role may open, derived from the routes' own access rules.

The header nav, the landing page and the page after login all read this, so a page that a role cannot
open is never offered to it: changing ``allow(...)`` on a page route changes the nav with it.
"""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import FastAPI
from fastapi.routing import APIRoute

from gasdesk.auth.access import access_rules_of, iter_routes
from gasdesk.auth.roles import ROLE_LABELS, Role
from gasdesk.config import get_settings


@dataclass(frozen=True)
class Console:
    """A staff page worth a link: its path, its name in the nav and a line for the landing page."""

    href: str
    title: str
    summary: str


# In the order people use them; who may open each comes from the route, not from this list.
CONSOLES: tuple[Console, ...] = (
    Console("/agent", "坐席工作台", "我的会话、排队、客户信息、知识推荐、生成工单"),
    Console("/agent/dashboard", "我的指标", "今日处理量、平均处理时长、质检结果、回访评分"),
    Console("/wall", "大屏", "排队、坐席状态、今日指标与趋势，实时刷新，适合大屏展示"),
    Console("/customers", "客户查询", "按电话、户号、姓名、地址查找客户，客户360"),
    Console("/tags/address", "地址关联", "按地址查看历史关联的电话号码和微信用户，确认或移除建议关联"),
    Console("/tickets", "工单", "筛选与保存视图，新建工单"),
    Console("/dispatch", "调度看板", "未派工单、班组负荷、派单"),
    Console("/appointments/calendar", "预约日历", "各区时段与预约"),
    Console("/crew", "我的工单", "手机处理工单：到场、结果、材料、照片、签字"),
    Console("/ichat", "内部沟通", "同事单聊与班组群聊：@提醒、图片文件、分享工单卡片"),
    Console("/reports", "统计报表", "日报/周报/月报/年报：渠道进线、AI承接、工单与SLA、回访、坐席、高峰、热点"),
    Console("/quality", "质检", "复核队列、评分表与规则、坐席与班组周趋势"),
    Console("/quality/mine", "我的质检", "我的质检得分、规则明细与申诉"),
    Console("/admin/kb", "知识库", "知识文章、导入、命中统计"),
    Console("/admin/tags", "智能标签", "按意图、关键词、地址、停气历史自动打标签的规则"),
    Console("/admin/bot/corrections", "意图纠正", "审核坐席标注的机器人误识别，用于重新训练意图模型"),
    Console("/admin/users", "用户管理", "新建用户、重置密码、调整角色、停用"),
    Console("/admin/audit", "审计日志", "谁在何时改了什么"),
    Console("/admin/webhooks", "Webhook", "对接外部系统的事件推送"),
    Console("/admin/wechat-menu", "公众号菜单", "编辑微信公众号菜单并推送到微信"),
    Console("/admin/outbox", "外发消息", "发给居民的微信、短信及送达状态"),
    Console("/admin/jobs", "后台任务", "待执行、执行中、失败与死信任务：详情、重试、丢弃"),
    Console("/admin/notice-templates", "通知模板", "短信与微信模板消息的服务商模板"),
    Console("/admin/ivr", "语音导航", "来电语音导航脚本：编辑、校验、版本与启用"),
    Console("/admin/wall", "大屏阈值", "排队、等待、超时等指标的黄色/红色提示阈值"),
    Console("/outages", "停气停暖公告", "发布、更新、结束停气/停暖公告；受影响用户的通知与送达"),
    Console("/emergency", "应急看板", "紧急事件：逐级通知、谁已通知、谁已确认、用时；宣布与关闭"),
    Console("/admin/emergency", "应急升级路径", "Ⅰ–Ⅳ级事件的通知步骤、渠道与确认时限"),
    Console("/admin/duty", "值班表", "值班长、抢修调度、安检主管的在班时间与应急联系方式"),
    Console("/admin/hours", "节假日安排", "法定节假日、调休与各服务线的日期安排，节前提示"),
    Console("/admin/roster", "智能排班", "按进线预测、技能与休息规则生成月度排班，调整并发布；值班按排班通知"),
    Console("/roster/mine", "我的排班", "已发布排班中我的班次与值班"),
    Console("/training", "智能培训", "学习资料、在线考试（限时）与AI陪练"),
    Console("/admin/training", "培训管理", "题库、考试、学习资料，考试成绩表与陪练成绩"),
)
# Pages anyone may open, listed on the landing page (not in the staff nav).
PUBLIC_PAGES: tuple[Console, ...] = (
    Console("/chat", "在线客服（居民）", "网页/H5 聊天，可用 widget.js 嵌入网站"),
    Console("/docs", "REST API 文档", "OpenAPI，供系统集成"),
    Console("/dev/simulator", "渠道模拟器（开发）", "扮演微信公众号关注者和短信用户，按真实协议测试（生产环境关闭）"),
)


def public_pages() -> tuple[Console, ...]:
    """The public pages that exist here (the simulator only outside production)."""
    return tuple(p for p in PUBLIC_PAGES if p.href != "/dev/simulator" or get_settings().simulator_enabled)


# Where each role starts after login. Admins and supervisors have no single console: the landing page
# lists theirs.
LANDING: dict[Role, str] = {
    Role.agent: "/agent",
    Role.dispatcher: "/dispatch",
    Role.field_crew: "/crew",
    Role.supervisor: "/",
    Role.admin: "/",
    Role.wall: "/wall",
}


def page_roles(app: FastAPI) -> dict[str, frozenset[Role]]:
    """Who may GET each page path of ``app`` (public pages: every role). Computed once per app."""
    cached: dict[str, frozenset[Role]] | None = getattr(app.state, "page_roles", None)
    if cached is not None:
        return cached
    table: dict[str, frozenset[Role]] = {}
    for route in iter_routes(app.routes):
        if not isinstance(route, APIRoute) or "GET" not in (route.methods or ()):
            continue
        roles = frozenset(Role)
        for rule in access_rules_of(route):
            if rule.roles is not None:
                roles &= rule.roles
        table[route.path] = roles
    app.state.page_roles = table
    return table


def consoles_for(app: FastAPI, role: Role | None) -> list[Console]:
    """The consoles ``role`` may open (all of them for an anonymous visitor, who is asked to log in)."""
    table = page_roles(app)
    return [c for c in CONSOLES if c.href in table and (role is None or role in table[c.href])]


def roles_label(app: FastAPI, href: str) -> str:
    """Who may open ``href``, in Chinese (for the landing page)."""
    roles = page_roles(app).get(href, frozenset())
    return "、".join(ROLE_LABELS[r] for r in Role if r in roles)


def landing_for(app: FastAPI, role: Role) -> str:
    """The page ``role`` starts on after login; the landing page if its console is not open to it."""
    target = LANDING.get(role, "/")
    if target != "/" and role not in page_roles(app).get(target, frozenset()):
        return "/"
    return target
