import pytest

from gasdesk.bot.nlu import is_gas_leak, understand

pytestmark = pytest.mark.no_database  # pure computation: run once, in the SQLite pass

LEAKS = [
    "厨房一股臭鸡蛋味",
    "家里有煤汽味",
    "闻到天然气的味道了",
    "燃气表那边有嘶嘶的声音",
    "报警器一直在叫",
    "燃气报警器滴滴滴响个不停",
    "报警器亮红灯了",
    "好像漏气了",
    "管子接口在跑气",
    "燃气泄露了",
    "屋里有点味，人有点头晕",
    "没有煤气味，但是报警器突然响了",
    "我本来想约个师傅装报警器，结果刚才报警器响了",
    "燃气灶着火了",
    # A long story with the leak buried in the middle.
    "我是幸福里小区的，户号2103345678，上周刚交了燃气费，今天中午回家做饭，进门就觉得有股怪怪的味道，"
    "开了窗户，现在在楼下，麻烦问一下我家这个月账单多少",
    "我想问下暖气费怎么交，顺便说一下楼道里好像一直有燃气味",
    "阀门那里涂了洗洁精水，一直在鼓泡",  # the soap test found it
    "rq xielou le",  # pinyin initials + pinyin
    "廚房有燃氣味",  # traditional characters
    # Knowledge questions next to a stated smell, or about something happening now, stay leaks.
    "家里有股味，万一是漏气怎么办",
    "厨房有煤气味，为什么不能开灯",
    "为啥我家老闻到煤气味",
    "我爸一氧化碳中毒了怎么急救",
    "如果闻到煤气味了怎么办",
    "不是漏气吧，有股味",
    # A leak alarm going off, a device that does what it is for now, a leak again where one was before.
    "燃气泄漏报警器响了",
    "报警器一闻到煤气就会响，现在响个不停",
    "上次漏气的地方又漏气了",
    "楼上漏气了，整个楼道都是味",
    "我家现在漏气了",
]

NOT_LEAKS = [
    "想装个燃气报警器",
    "报警器安装多少钱",
    "怎么预防燃气泄漏",
    "怎么检查软管是否老化",
    "燃气热水器安全使用要注意什么",
    "装个报警器，万一漏气能报警",
    "用肥皂水怎么检测漏气",
    "抹了肥皂水，没有冒泡",
    "灶打不着火了",
    "暖气片漏水了",
    "暖气管子漏了，地上全是水",
    "自行车轮胎漏气了",
    "是不是停气了",
    "拧开灶怎么都打不着火，也没闻到什么味道",
    # Questions about an imagined case, and a leak the resident denies.
    "如果闻到煤气味怎么办",
    "假如半夜闻到天然气味，第一步该做什么",
    "为什么闻到燃气味的时候不能打电话",
    "一氧化碳中毒的人怎么急救",
    "烧炉子怎么防煤气中毒",
    "不是漏气，是灶打不着了",
    # The product, what it does, a wish to prevent a leak, a leak that is over.
    "想在厨房装个漏气报警器",
    "有没有一漏气就自动关阀的那种阀门",
    "装个自闭阀能防漏气吗",
    "去年漏气那次多亏你们来得快",
    # Someone else's leak some time ago, a fear of one day, the news.
    "前几天隔壁漏气了，我也想装个报警器",
    "担心哪天燃气泄漏没人发现，想装个报警器",
    "电视上说有人家里燃气爆炸，我想请人来查查",
]


@pytest.mark.parametrize("text", LEAKS)
def test_leak_rules_fire(text):
    assert is_gas_leak(text)
    result = understand(text)
    assert result.intent == "gas_leak"
    assert result.confidence == 1.0


@pytest.mark.parametrize("text", NOT_LEAKS)
def test_leak_rules_stay_quiet(text):
    assert not is_gas_leak(text)


def test_alarm_installation_is_a_booking_not_a_leak():
    result = understand("想约师傅来家里装个燃气报警器")
    assert result.intent == "appointment_book"
    assert result.slots["service_type"] == "报警器安装"


def test_prevention_question_is_safety_knowledge():
    assert understand("怎么预防燃气泄漏").intent == "safety_knowledge"


def test_leak_overrides_whatever_else_the_message_asks():
    assert understand("我想查余额，另外厨房有股煤气味").intent == "gas_leak"
    assert understand("取消明天的安检，报警器在叫").intent == "gas_leak"


@pytest.mark.parametrize("text", ["灶台旋钮拧回去了火还是灭不了", "关了阀门还一直有火", "smell gas in the kitchen"])
def test_flame_that_will_not_go_out_and_english_are_leaks(text):
    assert is_gas_leak(text)
