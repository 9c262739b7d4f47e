"""Internal chat (内部沟通协作): 1:1 and group chats among staff, with files, @mentions and shared cards."""
