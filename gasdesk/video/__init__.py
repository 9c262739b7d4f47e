"""Video assist (视频协助): a one-way video from a resident's rear camera to the agent, with consent."""
