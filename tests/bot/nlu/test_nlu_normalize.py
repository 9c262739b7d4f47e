import pytest

from gasdesk.bot.nlu.normalize import canonicalize, normalize

pytestmark = pytest.mark.no_database  # pure computation: run once, in the SQLite pass


def test_full_width_digits_and_letters_become_half_width():
    assert normalize("户号２１０３３４５６７８，ＩＣ卡表") == "户号2103345678,ic卡表"


def test_homophone_typos_are_fixed():
    assert normalize("然气打不找火") == "燃气打不着火"
    assert normalize("燃汽表") == "燃气表"
    assert normalize("户好多少") == "户号多少"
    assert normalize("暖器不热") == "暖气不热"


def test_protected_words_survive_typo_rules():
    # 天然气 contains the typo key 然气 and 取暖器 contains 暖器: neither may be rewritten.
    assert normalize("天然气") == "天然气"
    assert normalize("天燃气") == "天然气"
    assert normalize("电取暖器") == "电取暖器"


def test_emoji_and_repeated_punctuation_are_dropped():
    assert normalize("没气了😭😭！！！？？") == "没气了 ?"  # a run of marks collapses to one


def test_synonyms_fold_to_one_word():
    assert canonicalize("煤气") == canonicalize("天然气") == "燃气"
    assert canonicalize("供暖不好") == canonicalize("采暖不好") == "暖气不好"
    assert canonicalize("缴费") == "交费"


def test_traditional_characters_become_simplified():
    assert normalize("燃氣費怎麼繳費") == "燃气费怎么缴费"
    assert normalize("報警器裝在哪裡") == "报警器装在哪里"  # 裡: the Taiwan form of 裏


def test_simplified_characters_are_never_folded_as_variants():
    # Variant tables list 么/皂/后/干 as sources too; they are standard simplified characters and stay.
    assert normalize("怎么用肥皂水 后天 干净") == "怎么用肥皂水 后天 干净"


def test_pinyin_becomes_characters():
    assert normalize("wo jia meiyou qi le") == "我家没有气了"
    assert normalize("chufang you meiqi wei") == "厨房有煤气味"  # 煤气, never 没气: a smell must stay a smell
    assert normalize("hu hao zenme cha") == "户号怎么查"
    assert normalize("yingyeting zai na") == "营业厅在哪"


def test_pinyin_initials_residents_use_become_words():
    assert normalize("rq xielou") == "燃气泄漏"
    assert normalize("rg kefu") == "人工客服"


def test_latin_that_is_not_pinyin_is_kept():
    assert normalize("ok 好的") == "ok 好的"
    assert normalize("wifi密码") == "wifi密码"
    # An identifier glued to digits is not pinyin (wx = 维修 otherwise).
    assert normalize("工单号WX20240312001") == "工单号wx20240312001"
