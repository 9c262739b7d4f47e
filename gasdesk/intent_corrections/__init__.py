"""Learning from production: agents correct the intent the bot understood, supervisors review, and approved
corrections train a candidate model (``gasdesk bot retrain``)."""
