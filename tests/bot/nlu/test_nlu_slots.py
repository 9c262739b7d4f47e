from datetime import datetime

import pytest

from gasdesk.bot.nlu import extract_slots

pytestmark = pytest.mark.no_database  # pure computation: run once, in the SQLite pass

NOW = datetime(2024, 11, 27, 10, 0)  # Wednesday, Asia/Shanghai


@pytest.mark.parametrize(
    ("text", "service_type"),
    [
        ("新房想开通燃气", "开栓"),
        ("约个通气", "开栓"),
        ("装修想改管", "改线"),
        ("想移表", "改线"),
        ("燃气管子想往墙角挪一挪", "改线"),
        ("预约入户安检", "安检"),
        ("燃气安全检查什么时候做", "安检"),
        ("想装个报警器", "报警器安装"),
        ("老房子要做阀管改造", "阀管改造"),
        ("小区旧改要动燃气管", "旧改施工"),
        ("灶打不着火，派人来修", "维修"),
        ("热水器坏了", "维修"),
        # The job described, not named.
        ("燃气表在橱柜里面不方便，想挪出来", "改线"),
        ("热水器点火就灭，派个师傅看看", "维修"),
        ("家里的老镀锌管锈得厉害，想换新的", "阀管改造"),
        ("小区在搞老旧小区改造，燃气要入户施工", "旧改施工"),
        ("想请人上门查一下燃气管道", "安检"),
        ("装修完了，约人来开通", "开栓"),
        ("想装一个可燃气体探测器", "报警器安装"),
        ("装修师傅说燃气管得你们来动", "改线"),  # 装修 is not a repair
        ("阀门锈死了，找个人来修一下", "维修"),  # the service named wins over the job described
        ("灶台从窗边换到对面墙，燃气管也得跟着挪", "改线"),
    ],
)
def test_service_type_synonyms_map_to_canonical_values(text, service_type):
    assert extract_slots(text)["service_type"] == service_type


@pytest.mark.parametrize("text", ["检查了表前阀，是开着的", "表前阀的气没开", "什么时候开通微信交费"])
def test_what_the_resident_did_or_saw_names_no_service(text):
    """Self-check answers in a running flow must not change the service it books."""
    assert "service_type" not in extract_slots(text)


@pytest.mark.parametrize(
    ("text", "topic"),
    [
        ("表显示低电压", "电池"),
        ("燃气表电池没电了", "电池"),
        ("插卡没反应", "插卡"),
        ("买完气卡要怎么插", "插卡"),
        ("怎么看表里还剩多少气", "余量"),
        ("自闭阀跳了怎么复位", "自闭阀"),
        ("表上显示low bat", "电池"),
        ("卡的芯片朝哪边插", "插卡"),
        ("阀门上的按钮弹起来了", "自闭阀"),
        ("表上显示的数字是什么意思", "余量"),
        ("IC卡表换电池之后要插卡吗", "电池"),  # the card meter is not the card
        ("阀上的拉杆拔起来又掉了", "自闭阀"),
    ],
)
def test_meter_topic(text, topic):
    assert extract_slots(text)["meter_topic"] == topic


@pytest.mark.parametrize(
    ("text", "meter_type"),
    [("我家是IC卡表", "IC卡表"), ("ｉｃ卡怎么充", "IC卡表"), ("物联网表", "物联网智能表"), ("老式机械表", "机械表")],
)
def test_meter_type(text, meter_type):
    assert extract_slots(text)["meter_type"] == meter_type


def test_account_number_with_typo_and_full_width_digits():
    assert extract_slots("户好２１０３３４５６７８，帮我查查")["account_no"] == "2103345678"


def test_phone_is_not_taken_for_an_account_number():
    slots = extract_slots("我的电话13812345678，户号88012345")
    assert slots["phone"] == "13812345678"
    assert slots["account_no"] == "88012345"


def test_mobile_after_account_label_is_an_account():
    assert extract_slots("户号13812345678")["account_no"] == "13812345678"
    assert "phone" not in extract_slots("户号13812345678")


def test_landline_and_spaced_mobile():
    assert extract_slots("座机010-62345678")["phone"] == "010-62345678"
    assert extract_slots("打我电话 139 1234 5678")["phone"] == "13912345678"


def test_work_order_number_is_not_an_account():
    assert "account_no" not in extract_slots("工单号WX20240312001什么状态")


@pytest.mark.parametrize(
    ("text", "address"),
    [
        ("我家在朝阳区幸福里小区3号楼2单元501，明天来", "朝阳区幸福里小区3号楼2单元501"),
        ("地址：幸福里3栋2单元501室", "幸福里3栋2单元501室"),
        ("住在建设路15号", "建设路15号"),
        ("阳光花园小区今天停气吗", "阳光花园小区"),
    ],
)
def test_address(text, address):
    assert extract_slots(text)["address"] == address


def test_no_address_for_pronoun_places():
    assert "address" not in extract_slots("我们小区停气了吗")


def test_date_and_time_slots_resolve_against_now():
    slots = extract_slots("想预约入户安检，户号2107654321，明天下午家里有人", NOW)
    assert slots == {"service_type": "安检", "account_no": "2107654321", "date": "2024-11-28", "time": "下午"}
    slots = extract_slots("下周一上午10点半来改管", NOW)
    assert (slots["date"], slots["time"], slots["service_type"]) == ("2024-12-02", "10:30", "改线")


def test_plain_greeting_has_no_slots():
    assert extract_slots("你好") == {}
