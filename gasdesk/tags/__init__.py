"""Smart tags (智能标签) and data links (数据关联): tag rules, automatic and manual tags, strangers 'numbers, address lookup."""
