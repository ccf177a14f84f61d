"""The campaign database: campaigns, steps, groups, attachments and their history."""
