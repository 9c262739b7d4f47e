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
