"""Knowledge base: articles with versions, hybrid offline search, import, admin pages and stats."""
