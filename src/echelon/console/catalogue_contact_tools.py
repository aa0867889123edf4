"""The catalogue's messages of the contact tools, in zh-CN and English: editing a
contact and its tags, consent by purpose, importing events and suppression lists, the
message log, answering a reply, one's own password. ``catalogue.py`` merges them into
its two languages."""

from __future__ import annotations

from typing import Final

CONTACT_TOOLS_ZH: Final[dict[str, str]] = {
    "nav.messages": "短信记录",
    # a contact's profile, edited
    "contact.edit": "编辑资料",
    "contact.lunar_birthday": "农历生日",
    "contact.edit_hint": (
        "与导入文件的写法相同：生日写作 1990-05-17，省份写 广东 或 广东省。清空一项即删除该项。"
    ),
    "contact.attributes": "自定义属性",
    "contact.attributes_hint": (
        "属性名最多 64 个字符，最多 50 个属性；清空属性值即删除该属性。"
        "分群可按 attributes.属性名 筛选。"
    ),
    "contact.attribute_name": "属性名",
    "contact.attribute_value": "属性值",
    "contact.attribute_needs_name": "属性值「{value}」没有属性名：请填写属性名，或清空这一行。",
    "contact.attribute_twice": "属性名「{name}」出现了两次。",
    "contact.add_tags": "添加标签",
    "contact.add_tags_hint": "如 会员，老客（逗号分隔）",
    "contact.remove_tag": "删除标签「{tag}」",
    "contact.need_tag": "请填写要添加的标签。",
    "contact.done.edited": "资料已保存。",
    "contact.done.unchanged": "资料没有变化。",
    "contact.done.tags_changed": "标签已更新。",
    "contact.done.tags_unchanged": "标签没有变化。",
    # consent by purpose
    "contact.bad_purpose": "同意用途只能是营销或通知。",
    "contact.other_live": "有效（来源见同意记录）。",
    "contact.other_none": "没有有效的同意记录。通知短信不以此为前提，记录供留档与分群使用。",
    "contact.grant_other": "记录{purpose}同意",
    "contact.withdraw_other": "撤回{purpose}同意",
    "contact.confirm_withdraw_other": "撤回{purpose}同意后立即生效。确定撤回吗？",
    "contact.done.service_consent_granted": "已记录通知同意。",
    "contact.done.service_consent_exists": "已有有效的通知同意，未重复记录。",
    "contact.done.service_consent_withdrawn": "通知同意已撤回，立即生效。",
    "contact.done.service_consent_missing": "没有有效的通知同意可撤回，未改变。",
    # importing events and suppression lists
    "import.events_title": "导入事件与订单",
    "import.events_hint": (
        "第一行为表头，须有手机号、事件类型（如 purchase/购买、cart_add/加购）和时间列；"
        "可含金额、订单号、品类、券码、事件ID。同一事件（按事件ID或内容）再次导入不会重复记录。"
    ),
    "import.step_map_events": "对应列",
    "import.columns_hint_events": (
        "约 {rows} 行。已自动识别常见表头；不对应任何字段的列保存为事件属性。"
    ),
    "import.as_property": "（事件属性）",
    "import.imported_events": "新记录的事件",
    "import.contacts_created": "新建联系人（无任何同意）",
    "import.event_types": "事件类型",
    "import.event_types_hint": (
        "内置类型：signup 注册、purchase 购买、cart_add 加购、checkout 结算、shipment 发货；"
        "也可写小写英文自定义名（如 app_open）。时间不带时区时按工作区时区。"
    ),
    "import.suppressions_title": "导入屏蔽名单",
    "import.suppressions_hint": (
        "第一行为表头，须有手机号列，可含原因列。名单中的号码立即不再收到短信（退订、黑名单）"
        "或营销短信（免打扰）。"
    ),
    "import.step_map_suppressions": "对应列与屏蔽类型",
    "import.columns_hint_suppressions": "约 {rows} 行。只读取手机号与原因两列，其余列忽略。",
    "import.ignored": "（忽略）",
    "import.imported_suppressions": "新加入屏蔽名单",
    "import.suppression_kind": "屏蔽类型",
    "import.suppression_kind_hint": "整份名单加入同一类屏蔽；已在该名单中的号码不变。",
    "import.source": "名单来源",
    "import.source_example": "如 运营商免打扰名单；不填记为 console_import",
    "import.need_field": "没有对应“{field}”的列：请在上方为它选择一列，否则整份文件无法导入。",
    "field.type": "事件类型",
    "field.occurred_at": "时间",
    "field.amount": "金额",
    "field.order_id": "订单号",
    "field.category": "品类",
    "field.coupon_code": "券码",
    "field.event_id": "事件ID",
    "field.reason": "原因",
    # the message log
    "log.campaign": "活动",
    "log.journey": "旅程",
    "log.any_campaign": "全部活动",
    "log.any_journey": "全部旅程",
    "log.any_status": "全部状态",
    "log.since": "创建时间从",
    "log.until": "到",
    "log.clear": "清除筛选",
    "log.export_csv": "导出筛选结果（CSV）",
    "log.export_xlsx": "导出筛选结果（Excel）",
    "log.hint": "按创建时间排列，最新在前；时间按工作区时区。",
    "log.created": "创建时间",
    "log.source": "来源",
    "log.channel": "通道",
    "log.times": "计划 / 提交 / 完成",
    "log.from_campaign": "活动：{name}",
    "log.from_journey": "旅程：{name}",
    "log.parts": "{parts} 条计费",
    "log.due": "计划",
    "log.submitted": "提交",
    "log.done": "完成",
    "log.none": "没有符合条件的短信。",
    "log.first_page": "← 第一页",
    # answering a reply
    "inbox.answer": "回复",
    "inbox.answer_hint": "回复这条短信（通知类，自动加签名）",
    "inbox.answer_to": "回复 {phone}",
    "inbox.answer_empty": "请填写回复内容。",
    "inbox.done.answered": "回复已进入发送队列。",
    "inbox.done.answer_blocked": "回复未发送：{reason}。已记录在短信记录中。",
    # one's own account
    "account.title": "我的账号",
    "account.who": "账号",
    "account.role": "角色",
    "account.change_password": "修改密码",
    "account.current": "当前密码",
    "account.new": "新密码",
    "account.confirm": "再次输入新密码",
    "account.hint": (
        "新密码 10–256 个字符。修改后，您在其他设备和浏览器上的登录会全部退出，当前登录保持有效。"
    ),
    "account.save": "修改密码",
    "account.mismatch": "两次输入的新密码不一致。",
    "account.too_many": "尝试过于频繁，请 {seconds} 秒后重试。",
    "account.done.password_changed": "密码已修改；其他 {sessions} 个登录已退出。",
}

CONTACT_TOOLS_EN: Final[dict[str, str]] = {
    "nav.messages": "Message log",
    "contact.edit": "Edit profile",
    "contact.lunar_birthday": "Lunar birthday",
    "contact.edit_hint": (
        "Written as in an import file: birthday as 1990-05-17, province as 广东 or 广东省. "
        "Clear a field to remove it."
    ),
    "contact.attributes": "Custom attributes",
    "contact.attributes_hint": (
        "Names of up to 64 characters, at most 50 attributes; clear a value to remove the "
        "attribute. Segments filter on attributes.name."
    ),
    "contact.attribute_name": "Name",
    "contact.attribute_value": "Value",
    "contact.attribute_needs_name": "The value “{value}” has no name: name it or clear the row.",
    "contact.attribute_twice": "The attribute “{name}” is given twice.",
    "contact.add_tags": "Add tags",
    "contact.add_tags_hint": "e.g. member, regular (comma-separated)",
    "contact.remove_tag": "Remove the tag “{tag}”",
    "contact.need_tag": "Type the tags to add.",
    "contact.done.edited": "Profile saved.",
    "contact.done.unchanged": "Nothing in the profile changed.",
    "contact.done.tags_changed": "Tags updated.",
    "contact.done.tags_unchanged": "The tags did not change.",
    "contact.bad_purpose": "Consent is for marketing or service only.",
    "contact.other_live": "Live (source in the history).",
    "contact.other_none": (
        "No live consent on record. Service messages do not depend on it; it is kept for the "
        "record and for segments."
    ),
    "contact.grant_other": "Record {purpose} consent",
    "contact.withdraw_other": "Withdraw {purpose} consent",
    "contact.confirm_withdraw_other": "Withdrawing {purpose} consent takes effect at once. Go on?",
    "contact.done.service_consent_granted": "Service consent recorded.",
    "contact.done.service_consent_exists": (
        "Service consent is live already; nothing recorded twice."
    ),
    "contact.done.service_consent_withdrawn": "Service consent withdrawn, effective at once.",
    "contact.done.service_consent_missing": "No live service consent to withdraw; nothing changed.",
    "import.events_title": "Import events and orders",
    "import.events_hint": (
        "The first row is the header, with a number, an event type (purchase, cart_add …) and "
        "a time column; amount, order number, category, coupon and event ID are optional. The "
        "same event (by its ID, or else its content) imported again is not recorded twice."
    ),
    "import.step_map_events": "Columns",
    "import.columns_hint_events": (
        "About {rows} rows. Common headers were recognised; columns naming no field are kept "
        "as event properties."
    ),
    "import.as_property": "(event property)",
    "import.imported_events": "Events recorded",
    "import.contacts_created": "New contacts (no consent of any kind)",
    "import.event_types": "Event types",
    "import.event_types_hint": (
        "Built in: signup, purchase, cart_add, checkout, shipment; or a lower-case name of "
        "your own (such as app_open). A time without a zone is read in the workspace's zone."
    ),
    "import.suppressions_title": "Import a suppression list",
    "import.suppressions_hint": (
        "The first row is the header, with a number column and optionally a reason. Listed "
        "numbers get no message at once (opt-out, blacklist) or no marketing (do not contact)."
    ),
    "import.step_map_suppressions": "Columns and kind",
    "import.columns_hint_suppressions": (
        "About {rows} rows. Only the number and reason columns are read; the rest is ignored."
    ),
    "import.ignored": "(ignored)",
    "import.imported_suppressions": "Newly suppressed",
    "import.suppression_kind": "Suppression kind",
    "import.suppression_kind_hint": (
        "The whole list goes on one kind; numbers on that list already stay as they are."
    ),
    "import.source": "Source of the list",
    "import.source_example": "e.g. carrier DNC list; blank means console_import",
    "import.need_field": (
        "No column is chosen for “{field}”: choose one above, or the file cannot be imported."
    ),
    "field.type": "Event type",
    "field.occurred_at": "Time",
    "field.amount": "Amount",
    "field.order_id": "Order number",
    "field.category": "Category",
    "field.coupon_code": "Coupon code",
    "field.event_id": "Event ID",
    "field.reason": "Reason",
    "log.campaign": "Campaign",
    "log.journey": "Journey",
    "log.any_campaign": "All campaigns",
    "log.any_journey": "All journeys",
    "log.any_status": "All statuses",
    "log.since": "Created from",
    "log.until": "to",
    "log.clear": "Clear filters",
    "log.export_csv": "Export these (CSV)",
    "log.export_xlsx": "Export these (Excel)",
    "log.hint": "Newest first by creation time; times in the workspace's zone.",
    "log.created": "Created",
    "log.source": "From",
    "log.channel": "Channel",
    "log.times": "Due / submitted / done",
    "log.from_campaign": "Campaign: {name}",
    "log.from_journey": "Journey: {name}",
    "log.parts": "{parts} billed part(s)",
    "log.due": "Due",
    "log.submitted": "Submitted",
    "log.done": "Done",
    "log.none": "No message matches.",
    "log.first_page": "← First page",
    "inbox.answer": "Reply",
    "inbox.answer_hint": "Reply to this message (service, signature added)",
    "inbox.answer_to": "Reply to {phone}",
    "inbox.answer_empty": "Type the reply.",
    "inbox.done.answered": "The reply is queued for sending.",
    "inbox.done.answer_blocked": "The reply was not sent: {reason}. It is kept in the message log.",
    "account.title": "My account",
    "account.who": "Account",
    "account.role": "Role",
    "account.change_password": "Change password",
    "account.current": "Current password",
    "account.new": "New password",
    "account.confirm": "New password again",
    "account.hint": (
        "10–256 characters. Afterwards your sign-ins on other devices and browsers are all "
        "signed out; this one stays."
    ),
    "account.save": "Change password",
    "account.mismatch": "The two new passwords differ.",
    "account.too_many": "Too many attempts; try again in {seconds} seconds.",
    "account.done.password_changed": "Password changed; {sessions} other sign-in(s) signed out.",
}
