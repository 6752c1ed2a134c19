"""Placeholder labels: what a redacted span becomes (``[手机号]``) and what the counts are keyed by."""

from __future__ import annotations

MOBILE = "手机号"
LANDLINE = "固定电话"
ID_CARD = "身份证号"
ID_DOCUMENT = "证件号码"
PASSPORT = "护照号"
PERMIT = "通行证号"
BANK_CARD = "银行卡号"
BANK_ACCOUNT = "银行账号"
EMAIL = "邮箱"
NAME = "姓名"
ADDRESS = "地址"
