"""Quality inspection (质检): scoring sheets, automatic scoring of closed contacts, review, appeals."""
